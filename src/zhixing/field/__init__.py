"""The command center's field work: tips and rewards, resources and dispatch, the field app,
positions, incidents and the live map."""
