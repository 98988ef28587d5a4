{{ config(materialized='table', dist='all') }}

select c.id as customer_id, c.name, count(o.id) as orders, sum(o.amount) as total
from {{ ref('customers') }} c
left join {{ ref('orders_incremental') }} o on o.customer_id = c.id
group by c.id, c.name
