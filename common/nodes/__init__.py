"""Worker nodes: what they can run (`capabilities`, typed from the lease), what a restream costs
on them (`capacity`, the cost model), where one fits and the one planner of a round of
placements (`placement`, pure), and their rows (`repository`). No restream state is written
here: that is `common.lifecycle`'s."""
