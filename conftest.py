pytest_plugins = ["fleet_devtools.testing.fixtures"]
