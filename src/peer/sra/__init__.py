"""The Sequential Resale Auction as pure, sans-I/O node machines."""
