"""Training algorithms: reusable code, engine, parameters and data channels that jobs start from."""
