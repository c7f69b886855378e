"""Everything between "a job is queued" and "a result is stored"; never imports `appliance`."""
