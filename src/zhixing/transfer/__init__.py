"""Moving a court's data: export and import of the whole database (``archive``), and loading a
court's own reference data from files (``reference``)."""
