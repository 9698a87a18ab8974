print("vmms-bench: not written yet")
