"""The distributed auctioneer (issue #12): providers jointly simulate an auction no one of them controls."""
