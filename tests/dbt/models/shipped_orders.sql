{{ config(materialized='view', bind=False) }}

select id, customer_id, amount
from {{ ref('raw_orders') }}
where status = 'shipped'
