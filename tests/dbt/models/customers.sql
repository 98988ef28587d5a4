{{ config(materialized='table', dist='id', sort=['region', 'id']) }}

select id, name, region
from {{ ref('raw_customers') }}
