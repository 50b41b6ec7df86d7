//! Process attributes the init sets before exec: rlimits, oom_score_adj, personality,
//! scheduler, I/O priority, CPU affinity, session keyring, sysctls and the user/group switch.
