"""Topics, subscriptions and their deliveries (layer 5): what the SNS API does, over tables of
the metadata database. The wire layer is tailrace.api.sns; the delivery loop is delivery.py."""
