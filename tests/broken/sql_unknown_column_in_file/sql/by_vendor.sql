-- trips per vendor
SELECT VendorID, COUNT(*) AS trips
FROM trips
WHERE trip_distanse > 0
GROUP BY VendorID
