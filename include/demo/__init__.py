"""Demo datasets and seeding helpers: not part of the production package ``include.retrainer``."""
