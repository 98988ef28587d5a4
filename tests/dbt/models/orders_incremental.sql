{{ config(materialized='incremental', unique_key='id', incremental_strategy='delete+insert', dist='even', sort='id') }}

select id, customer_id, status, amount, order_date
from {{ ref('raw_orders') }}
{% if is_incremental() %}
-- On later runs only the newest orders are deleted and inserted again.
where id > (select max(id) - 3 from {{ this }})
{% endif %}
