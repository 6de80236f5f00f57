"""Console pages for segments (the builder, saved segments, snapshots, exports) and for the
layers computed over the customer base (RFM grid, lifecycle funnel, super users, CLV model)."""
