"""What several test tiers share (servers the tests start, their fixtures); no tier imports another tier's tests."""
