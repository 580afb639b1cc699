"""What every worker feature shares: the base task, the dependencies a service gets (`Deps`), the records
and the Redis state, the one sticky comment, and who may run which command."""
