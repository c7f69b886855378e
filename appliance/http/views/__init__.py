"""HTTP views: thin adapters from requests to domain calls."""
