"""The contact center: IVR, ACD, customers, conferences, recordings catalogue and reports."""
