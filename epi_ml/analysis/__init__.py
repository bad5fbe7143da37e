"""Analyses of runs: what the logged signals say about the growth.

    epi_ml.analysis.rheed   growth rate from RHEED specular-intensity oscillations

Every analysis takes the readers' tables or plain arrays, never raises on bad data (it says what
it could not conclude and why) and imports no dagster and no dash.
"""
