"""Personal data breaches: the record the CNIL asks for, and the notice to the customers concerned."""
