"""The S3 REST API over the embedded object store (`tailrace s3 serve`)."""
