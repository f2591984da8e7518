/* A 3-node (or N-node) ZooKeeper ensemble for fault tests, driven through
 * tests/zk-ensemble.sh. Members are numbered from 1. Every started ensemble
 * is stopped at exit even if a test aborts. */
#ifndef ZKR_TESTS_ENSEMBLE_H
#define ZKR_TESTS_ENSEMBLE_H

typedef struct th_ens th_ens;

/* The longest the ensemble takes to have a synced leader again after its
 * leader died: initLimit x tickTime of tests/zk-ensemble.sh's config (20 x
 * 200 ms). */
#define TH_ENS_ELECTION_MS 4000

/* Starts n members in a fresh mktemp -d directory; NULL on failure. */
th_ens *th_ens_start(int n);
/* Connect string of all members (borrowed). */
const char *th_ens_hosts(th_ens *e);
/* Index of the current leader, or -1. */
int th_ens_leader(th_ens *e);
/* Waits until the ensemble has a leader (bounded by the script's
 * START_TIMEOUT, as a start is); 0 once it has. */
int th_ens_await_leader(th_ens *e);
/* Client port of member i. */
int th_ens_port(th_ens *e, int i);
/* SIGKILL / stop (TERM) / restart member i; start waits until it serves.
 * Each returns 0 on success. */
int th_ens_kill(th_ens *e, int i);
int th_ens_stop_member(th_ens *e, int i);
int th_ens_start_member(th_ens *e, int i);
/* Stops every member / restarts every member and waits for a leader. */
int th_ens_stop_all(th_ens *e);
int th_ens_start_all(th_ens *e);
/* Stops everything and removes the directory. Accepts NULL. */
void th_ens_free(th_ens *e);

#endif
