"""Authentication (x509 client certificates, service-account and bootstrap tokens), RBAC authorization,
the review endpoints (TokenReview, access reviews, TokenRequest), the bootstrap policy and the audit log."""
