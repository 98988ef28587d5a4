{{ config(materialized='view') }}

select o.id, o.customer_id, o.status, o.amount, o.order_date, c.region
from {{ ref('raw_orders') }} o
join {{ ref('customers') }} c on c.id = o.customer_id
