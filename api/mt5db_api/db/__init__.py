"""All SQL of the data plane: functions taking a connection, one module per table (plus migrations)."""
