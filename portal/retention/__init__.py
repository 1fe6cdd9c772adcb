"""Retention: every purpose keeps its data only as long as the purpose register says, then it goes."""
