-- One Billion Row Challenge as a streaming aggregation
SELECT station, MIN(temperature), AVG(temperature), MAX(temperature)
FROM measurements
WHERE temperature IS NOT NULL;
