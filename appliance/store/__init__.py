"""The SQL layer: every query the appliance runs lives in this package."""
