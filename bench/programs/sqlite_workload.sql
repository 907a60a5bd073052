-- sqlite3 CLI workload for bench/run.py: bulk insert in one transaction,
-- indexes, joins, grouping. Rows: @n orders, @n/10 customers (set @n with
-- `.parameter set @n N` before `.read`). Data are arithmetic, not random(),
-- so the output is the same on every run and under every allocator.
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, region INTEGER, created INTEGER);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, amount INTEGER, note TEXT);
CREATE TABLE items(order_id INTEGER, sku TEXT, qty INTEGER);
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < @n / 10)
INSERT INTO customers SELECT i, 'customer-' || i, (i * 7919) % 50, (i * 104729) % 100000 FROM c;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < @n)
INSERT INTO orders SELECT i, 1 + (i * 7 + (i / 13) * (i % 17)) % (@n / 10), (i * 40503) % 10007,
  printf('order %d: %s', i, substr('abcdefghijklmnopqrstuvwxyz0123456789', 1 + i % 30)) FROM c;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < @n / 2)
INSERT INTO items SELECT 1 + (i * 48271) % @n, 'sku-' || ((i * 16807) % 997), 1 + i % 5 FROM c;
COMMIT;
CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX customers_region ON customers(region);
CREATE INDEX items_order ON items(order_id);
SELECT count(*), sum(amount), sum(length(note)) FROM orders;
SELECT c.region, count(*), sum(o.amount), max(length(o.note))
  FROM orders o JOIN customers c ON c.id = o.customer
  GROUP BY c.region ORDER BY c.region LIMIT 8;
SELECT c.name, sum(o.amount) AS total FROM customers c JOIN orders o ON o.customer = c.id
  WHERE c.region = 7 GROUP BY c.id ORDER BY total DESC, c.id LIMIT 5;
SELECT i.sku, count(*), sum(i.qty * o.amount) FROM items i JOIN orders o ON o.id = i.order_id
  GROUP BY i.sku ORDER BY 3 DESC, 1 LIMIT 5;
SELECT count(*) FROM (SELECT customer FROM orders GROUP BY customer HAVING count(*) > 10);
SELECT group_concat(note, '|') FROM (SELECT note FROM orders WHERE id % (@n / 8) = 1 ORDER BY note);
