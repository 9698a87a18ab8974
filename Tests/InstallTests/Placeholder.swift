// Install tests live here.
