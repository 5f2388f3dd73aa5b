"""A minimal Django app for the invalidation tests: categories, products, tags (m2m)."""
