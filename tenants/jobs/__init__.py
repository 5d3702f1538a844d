"""When each periodic agency job next has work (public schema). See ``services``."""
