-- Enrich the orders stream and keep large orders only
SELECT order_id, customer_id, amount, currency
FROM orders
WHERE amount > 100;
