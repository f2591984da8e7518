/* The contender protocol of src/queue.c as a Promela model, checked by spin.
 *
 * What is modelled: one ZooKeeper server (a directory of ephemeral
 * sequential nodes, sessions, one-shot watches delivered in order per
 * session), NC clients each running one contender of the engine (protected
 * create and its recovery by uuid, listing, placement by the recipe's
 * policy, the predecessor watch, the no-relist shortcut with its premise,
 * the read of our own node before a grant, the grant's owner check,
 * release with retried delete, the own-node watch, the session's orphan
 * deletes, the client's validity clock), and bounded faults.
 *
 * Every step names, in a comment, the C function it stands
 * for; tests/check-model.sh fails when one of them no longer exists.
 *
 * Abstractions (why they are sound for what we check):
 *  - The server runs a request when it is sent (unless the connection is
 *    down: then the reply is an immediate CONNLOSS and nothing ran). A
 *    request's effect may happen anywhere between send and reply; nothing
 *    the client observes lies between send and execution, so the other
 *    clients' steps in that gap can be moved before the send.
 *  - A reply carries what the C completion reads (a listing is reduced to
 *    "our node is there" and the set of nodes that block us, computed by
 *    the policy at the server's instant). A node's name, czxid and owner
 *    never change, so the client reads them from the slot.
 *  - Time is abstract. The validity clock (src/session.c) promises that the
 *    client's deadline (last ack send time + timeout - margin) passes
 *    before the server can expire the session: the server may expire a
 *    session only once its deadline has passed (sdl[]). A holder whose
 *    deadline passed may still be running (a paused process) until its
 *    event thread declares the session lost; such a holder has no valid
 *    hold (zkr_lock_valid_until() says so) and is not counted.
 *  - A connection loss turns every reply the client has not processed yet
 *    into CONNLOSS. Watch events of watches the client had registered (the
 *    reply seen) come again after the reconnection (the C client re-arms
 *    them, setWatches); those of unregistered ones are lost.
 *  - Data changes, ACLs, missing parents, persistent look-alikes (P5), the
 *    try-once mode and the limit > 1 policies (leases) are not modelled.
 *
 * Variants (the old behaviours; each must fail, see check-model.sh):
 *  -DNO_PREMISE    advance() grants on the predecessor's deletion even
 *                  when other blockers were listed (no P3)
 *  -DNO_CONFIRM    a predecessor's deletion grants without reading our own
 *                  node (no C_CONFIRM, no P2)
 *  -DCURATOR604    the recipe survives a session loss on a new session,
 *                  as Curator's does, and nothing checks the node's owner
 *                  or the session at the grant (no P4)
 *  -DNO_EXHAUSTED  a node with an exhausted suffix is kept (no P1)
 * Those must show two holders. The other checks have their own:
 *  -DSTALE_TOKEN   stat_done() keeps the token it had instead of reading
 *                  the recovered node's czxid: a fencing-order violation
 *  -DNO_LOSS_ORPHAN  zkr__queue_session_lost() leaves the contender's node
 *                  to the server's expiry instead of deleting it: a node
 *                  left behind while the session still lives
 *  -DLOST_WAKEUP   watch_result() takes "the blocker is already gone"
 *                  (ZNONODE) for "wait": a waiter never woken (progress)
 *  -DFALSE_GIVEUP  watch_result() gives up (ETIMEDOUT) on a live contender
 *                  ahead although nobody asked: every client ends, so only
 *                  the check that each result has its cause catches it
 *  -DNO_OWN_EVENT  ticket_watcher() ignores our own node's deletion: with
 *                  -DLEARN -DHOLD_FOREVER a broken hold is never learnt
 * And a control: -DRENEW alone (survive on a new session, checks kept)
 * must pass: the owner check alone stops CURATOR-604.
 *
 * Configurations: -DRWLOCK (reader, writer, reader) or -DRWLOCK=2 (writer,
 * reader, writer) instead of mutex contenders; -DNC=2 two clients (room
 * for more faults); -DPROGRESS the liveness claim below (pan -a -f);
 * -DLEARN -DHOLD_FOREVER holders keep their hold until told it is lost,
 * and the claim that a broken hold is learnt (pan -a -f); -DSEQLIMIT (the directory's counter reaches its limit on the
 * second create, then repeats or wraps); MAXF faults per run. */

#ifndef NC
#define NC 3
#endif
#ifndef MAXF
#define MAXF 2
#endif
#ifdef CURATOR604
#define RENEW
#define NO_OWNER_CHECK
#endif
#ifdef RENEW
#define NSESS (2 * NC)
#else
#define NSESS NC
#endif
/* node slots, never reused: a client may create twice (its first node
 * deleted before its lost create reply was recovered); 7 at most (a
 * listing is a byte: 7 slots and "ours is there") */
#ifndef NSLOT
#define NSLOT (2 * NC)
#endif
#define CAP 6 /* messages a client may have pending */
#define NONE 255

/* ---- contender states: enum cstate of src/queue.c ---- */
#define C_CREATE 1
#define C_RECOVER 2
#define C_CHECK 3
#define C_LIST 4
#define C_WAIT 5
#define C_CONFIRM 6
#define C_HELD 7
#define C_LOST 8
#define C_RELEASE 9
#define C_DONE 10

/* results (zkr error codes, abridged) */
#define R_OK 0
#define R_ELOST 1
#define R_ESESSION 2
#define R_ETIMEDOUT 3
#define R_EEXHAUSTED 4

/* ZooKeeper return codes */
#define ZOK 0
#define ZNONODE 1
#define ZCONNLOSS 2

/* messages to a client: replies (by request kind) and events */
#define M_CREATE 1  /* create_done() */
#define M_LIST 2    /* list_done(), a listing for place() */
#define M_RLIST 3   /* list_done() in C_RECOVER: found_by_uuid() */
#define M_STAT 4    /* stat_done() */
#define M_WATCH 5   /* wget_done() -> watch_result() */
#define M_OWN 6     /* own_read_done(), K_OWNWATCH */
#define M_CONFIRM 7 /* own_read_done(), K_CONFIRM */
#define M_DELETE 8  /* delete_done() */
#define E_FIRST 20
#define E_PRED 20 /* ticket_watcher(): the predecessor was deleted */
#define E_OWN 21  /* ticket_watcher(): our own node was deleted */
#define E_CONN 22 /* session_watcher(): connected again */

#define bit(s) (1 << (s))

/* ---- the server ---- */
bool ex[NSLOT];   /* the node exists */
byte own[NSLOT];  /* ephemeral owner (session) */
byte key[NSLOT];  /* sequence suffix: 0 = wrapped (negative) */
bool wr[NSLOT];   /* exclusive node (writer / mutex) */
byte tagof[NSLOT];/* the uuid in its name (protected create) */
byte czx[NSLOT];  /* czxid: the fencing token */
byte dzx[NSLOT];  /* zxid of its deletion */
bool hdel[NSLOT]; /* deleted by a third party (the fault), not by a session */
byte nslot;       /* slots are never reused */
byte zxid;
byte seqc = 1;    /* the directory's child counter */
byte lim = 200;   /* its limit (2147483647); 200 = never reached */
bool wrap;        /* past the limit: wraps (negative) instead of repeating */
bool sexp[NSESS]; /* the server expired the session */
bool sdl[NSESS];  /* the session's validity deadline has passed */
/* one-shot watches, per client: on its own node, and on its predecessor */
byte ow_slot[NC]; /* slot + 1 of a live own-node watch, 0 = none */
bool ow_act[NC];  /* its reply was seen: the client re-arms it on reconnect */
byte pw_slot[NC];
byte pw_gen[NC];  /* the attempt (gen) the predecessor watch belongs to */
bool pw_act[NC];
/* events of registered watches fired while the connection was down */
bool re_own[NC];
bool re_pred[NC];
byte re_pgen[NC];
byte re_pzx[NC];

chan ch[NC] = [CAP] of { byte, byte, byte, byte, byte }; /* kind, gen, rc, arg, zxid */

#ifdef LEARN
/* A holder learns that its hold is lost (its node deleted by a third
 * party): with -DHOLD_FOREVER nobody releases of their own accord, so only
 * the own-node watch (or the validity clock) can end a broken hold; under
 * weak fairness it must. For the first two clients. */
ltl learn { []((broken[0] -> <>(st[0] != C_HELD)) && (broken[1] -> <>(st[1] != C_HELD))) }
#endif

#ifdef PROGRESS
/* Progress, checked with weak fairness (pan -a -f): faults are bounded, so
 * they cease, and then every client ends: granted and released, or told
 * why not (finish() with its rc). A waiter left waiting forever, or a
 * cycle of steps that never ends, is an acceptance cycle. */
ltl progress { <>(ended == NC) }
#endif

/* ---- the clients ---- */
byte sess[NC];  /* current session id */
bool disc[NC];  /* connection down */
bool slost[NC]; /* the session was declared lost (terminal) */
byte orph[NC];  /* the session's orphans: nodes to delete in the background */
byte orphp[NC]; /* an orphan prefix (uuid + 1) to look for */
bool kind[NC];  /* 1 = exclusive (writer, mutex) */
/* struct zkr__contender */
byte st[NC];
byte node[NC];
byte tag[NC];
byte ctok[NC];   /* czxid */
byte osid[NC];   /* owner_sid */
byte gen[NC];
bool dfr[NC];    /* deferred */
bool ownarm[NC]; /* own_armed */
bool ownstep[NC];/* own_step */
bool dunsure[NC];/* delete_unsure */
bool wdraw[NC];  /* withdrawing */
byte abrc[NC];   /* abandon_rc */
bool wasg[NC];   /* was_granted */
byte preds[NC];  /* blockers listed, a set of slots */
byte rc[NC];
byte ntags[NC];

/* ---- what is checked ---- */
byte faults;
byte ended;
bool fin[NC]; /* the client is done */
bool broken[NC]; /* a third party deleted the holder's node: its hold is
                    lost (it learns from its own-node watch or its delete) */
bool two_holders;
bool fence_ok = 1;
/* Why a client may end without a hold: each result needs its cause (the
 * progress claim alone would accept a waiter told a false reason). */
bool gaveup[NC]; /* its caller gave up waiting: ETIMEDOUT */
bool hit[NC];    /* a third party deleted one of its nodes: ELOST (or
                    its old session expired, with -DRENEW) */
bool exh[NC];    /* one of its nodes got an exhausted suffix: EEXHAUSTED */
bool nocause;    /* (ESESSION: one of its sessions' deadline passed) */
byte max_all, max_w; /* highest token granted, of any kind / to a writer */

hidden byte s_, j_, k_, n_, mt, mg, mr, ma, mz;

/* Queue order: by suffix, then by name (the uuid). Equal suffixes only
 * occur past the limit; the later node is made to sort first, the worst
 * case. */
#define before(a, b) (key[a] < key[b] || (key[a] == key[b] && (a) > (b)))
/* zkr__name_seq_exhausted() */
#define exhausted(s) (key[s] == 0 || key[s] >= lim)
/* node_matters() */
#define node_matters(i) (st[i] == C_HELD || st[i] == C_LIST || st[i] == C_WAIT || st[i] == C_CONFIRM)
#define valid(j) (st[j] == C_HELD && !broken[j] && !sdl[sess[j]])

inline put(j, t, g, r, a, z) {
  assert(len(ch[j]) < CAP);
  ch[j]!t, g, r, a, z
}

/* A watch fires: to the channel, or kept for the reconnection. */
inline fire_own(j) {
  if
  :: disc[j] -> re_own[j] = 1
  :: else -> put(j, E_OWN, 0, 0, 0, zxid)
  fi
}

inline fire_pred(j) {
  if
  :: disc[j] -> re_pred[j] = 1; re_pgen[j] = pw_gen[j]; re_pzx[j] = zxid
  :: else -> put(j, E_PRED, pw_gen[j], 0, 0, zxid)
  fi
}

/* The server deletes node s (hostile: a third party did). */
inline srv_delete(s, hostile) {
  ex[s] = 0;
  zxid++;
  dzx[s] = zxid;
  hdel[s] = hostile;
  j_ = 0;
  do
  :: j_ < NC ->
    if
    :: ow_slot[j_] == s + 1 -> ow_slot[j_] = 0; fire_own(j_)
    :: else
    fi;
    if
    :: pw_slot[j_] == s + 1 -> pw_slot[j_] = 0; fire_pred(j_)
    :: else
    fi;
    if
    :: hostile && st[j_] == C_HELD && node[j_] == s -> broken[j_] = 1
    :: else
    fi;
    if
    :: hostile && own[s] % NC == j_ -> hit[j_] = 1
    :: else
    fi;
    j_++
  :: else -> break
  od;
  skip /* a loop must not end a d_step */
}

/* The server creates client i's node (ephemeral, sequential); s_ is it. */
inline srv_create(i) {
  assert(nslot < NSLOT);
  s_ = nslot;
  nslot++;
  ex[s_] = 1;
  own[s_] = sess[i];
  wr[s_] = kind[i];
  tagof[s_] = tag[i];
  zxid++;
  czx[s_] = zxid;
  if
  :: seqc < lim -> key[s_] = seqc; seqc++
  :: seqc == lim -> key[s_] = lim; seqc++ /* 2147483647 itself */
  :: seqc > lim && wrap -> key[s_] = 0
  :: seqc > lim && !wrap -> key[s_] = lim
  fi
}

/* A listing as place() reads it: bit 7 = our node is there, bits 0-6 =
 * the nodes that block us by the policy (the reader's or the writer's,
 * recipes/rwlock.c reader_blocks(); a mutex: every earlier node). */
inline listing(me, out) {
  out = (ex[me] -> 128 : 0);
  k_ = 0;
  do
  :: k_ < nslot ->
    if
    :: k_ != me && ex[k_] && before(k_, me) && (wr[me] || wr[k_]) -> out = out | bit(k_)
    :: else
    fi;
    k_++
  :: else -> break
  od;
  skip /* a loop must not end a d_step */
}

/* The nearest blocker: the one sorting last among those before us. */
inline nearest(i, out) {
  out = NONE;
  k_ = 0;
  do
  :: k_ < nslot ->
    if
    :: (preds[i] & bit(k_)) && (out == NONE || before(out, k_)) -> out = k_
    :: else
    fi;
    k_++
  :: else -> break
  od;
  skip /* a loop must not end a d_step */
}

/* ---- the engine: src/queue.c, one client's side ---- */

/* new_attempt() */
inline new_attempt(i) {
  gen[i]++;
  dfr[i] = 0
}

/* finish() */
inline finish(i, r) {
  st[i] = C_DONE;
  rc[i] = r;
  dfr[i] = 0;
  gen[i]++;
  preds[i] = 0
}

/* fail(): a node of a contender that fails goes to the orphans */
inline fail(i, r) {
  if
  :: node[i] != NONE -> orph[i] = orph[i] | bit(node[i])
  :: else
  fi;
  finish(i, r)
}

/* lose_hold() */
inline lose_hold(i, r) {
  if
  :: st[i] == C_HELD -> st[i] = C_LOST; rc[i] = r; ownstep[i] = 0
  :: else
  fi
}

/* node_gone() */
inline node_gone(i) {
  if
  :: st[i] == C_HELD -> lose_hold(i, R_ELOST)
  :: st[i] == C_LIST || st[i] == C_WAIT || st[i] == C_CONFIRM -> finish(i, R_ELOST)
  :: else
  fi
}

/* send_create(): create and listing back to back (zkr__contender_start()) */
inline send_create(i) {
  new_attempt(i);
  st[i] = C_CREATE;
  if
  :: disc[i] -> put(i, M_CREATE, gen[i], ZCONNLOSS, 0, 0); put(i, M_LIST, gen[i], ZCONNLOSS, 0, 0)
  :: else ->
    srv_create(i);
    put(i, M_CREATE, gen[i], ZOK, s_, zxid);
    listing(s_, n_);
    put(i, M_LIST, gen[i], ZOK, n_, zxid)
  fi
}

/* send_recover(): sync, then list; the one server answers in order, so
 * the sync is implied. */
inline send_recover(i) {
  new_attempt(i);
  st[i] = C_RECOVER;
  if
  :: disc[i] -> put(i, M_RLIST, gen[i], ZCONNLOSS, 0, 0)
  :: else ->
    n_ = NONE;
    k_ = 0;
    do
    :: k_ < nslot -> if
                     :: ex[k_] && tagof[k_] == tag[i] -> n_ = k_
                     :: else
                     fi; k_++
    :: else -> break
    od;
    put(i, M_RLIST, gen[i], ZOK, n_, zxid)
  fi
}

/* send_stat() */
inline send_stat(i) {
  new_attempt(i);
  st[i] = C_CHECK;
  if
  :: disc[i] -> put(i, M_STAT, gen[i], ZCONNLOSS, 0, 0)
  :: !disc[i] && ex[node[i]] -> put(i, M_STAT, gen[i], ZOK, own[node[i]], zxid)
  :: else -> put(i, M_STAT, gen[i], ZNONODE, 0, zxid)
  fi
}

/* send_list() */
inline send_list(i) {
  new_attempt(i);
  if
  :: disc[i] -> put(i, M_LIST, gen[i], ZCONNLOSS, 0, 0)
  :: else -> listing(node[i], n_); put(i, M_LIST, gen[i], ZOK, n_, zxid)
  fi
}

/* send_watch(): a data watch on the nearest blocker; getData leaves a
 * watch only on a node that exists. */
inline send_watch(i) {
  new_attempt(i);
  st[i] = C_WAIT;
  nearest(i, n_);
  if
  :: disc[i] -> put(i, M_WATCH, gen[i], ZCONNLOSS, 0, 0)
  :: !disc[i] && ex[n_] ->
    pw_slot[i] = n_ + 1; pw_gen[i] = gen[i]; pw_act[i] = 0;
    put(i, M_WATCH, gen[i], ZOK, n_, zxid)
  :: else -> put(i, M_WATCH, gen[i], ZNONODE, n_, zxid)
  fi
}

/* send_own_watch() */
inline send_own_watch(i) {
  ownstep[i] = 0;
  ownarm[i] = 1;
  if
  :: disc[i] -> put(i, M_OWN, gen[i], ZCONNLOSS, 0, 0)
  :: !disc[i] && ex[node[i]] -> ow_slot[i] = node[i] + 1; ow_act[i] = 0; put(i, M_OWN, gen[i], ZOK, 0, zxid)
  :: else -> put(i, M_OWN, gen[i], ZNONODE, 0, zxid)
  fi
}

/* send_confirm(): read our own node before the grant (P2); it sets the
 * own-node watch when none is set (arg 1). */
inline send_confirm(i) {
  new_attempt(i);
  st[i] = C_CONFIRM;
  if
  :: disc[i] -> put(i, M_CONFIRM, gen[i], ZCONNLOSS, !ownarm[i], 0)
  :: !disc[i] && ex[node[i]] ->
    if
    :: !ownarm[i] -> ow_slot[i] = node[i] + 1; ow_act[i] = 0
    :: else
    fi;
    put(i, M_CONFIRM, gen[i], ZOK, !ownarm[i], zxid)
  :: else -> put(i, M_CONFIRM, gen[i], ZNONODE, !ownarm[i], zxid)
  fi
}

/* send_delete() */
inline send_delete(i) {
  new_attempt(i);
  st[i] = C_RELEASE;
  if
  :: disc[i] -> put(i, M_DELETE, gen[i], ZCONNLOSS, 0, 0)
  :: !disc[i] && ex[node[i]] -> srv_delete(node[i], 0); put(i, M_DELETE, gen[i], ZOK, 0, zxid)
  :: else -> put(i, M_DELETE, gen[i], ZNONODE, 0, zxid)
  fi
}

/* What the grant is checked against. zx: the server's instant of the
 * answer the grant rests on. A hold whose node a third party deleted after
 * that instant is lost, not wrong (the holder learns it from its own-node
 * watch or its delete; the fencing token is what protects the resource
 * meanwhile). Any other hold counts, while its deadline has not passed. */
inline check_grant(i, zx) {
  broken[i] = !ex[node[i]] && hdel[node[i]] && dzx[node[i]] > zx;
  if
  :: !broken[i] && !sdl[sess[i]] ->
    j_ = 0;
    do
    :: j_ < NC ->
      if
      :: j_ != i && valid(j_) && (kind[i] || kind[j_]) ->
        printf("MODEL: TWO HOLDERS: client %d granted while client %d holds\n", i, j_);
        two_holders = 1
      :: else
      fi;
      j_++
    :: else -> break
    od;
    assert(!two_holders);
    /* The fencing token: larger than every earlier conflicting holder's. */
    if
    :: kind[i] && ctok[i] <= max_all -> fence_ok = 0
    :: !kind[i] && ctok[i] <= max_w -> fence_ok = 0
    :: else
    fi;
    if
    :: !fence_ok -> printf("MODEL: FENCING: client %d granted token %d after %d\n", i, ctok[i], max_all)
    :: else
    fi;
    assert(fence_ok);
    if
    :: kind[i] -> max_w = ctok[i]
    :: else
    fi;
    if
    :: ctok[i] > max_all -> max_all = ctok[i]
    :: else
    fi
  :: else
  fi
}

/* grant(): a stale view (a listing from before a reconnect) never grants:
 * the node must be ours, in this session, and the session usable (P4). */
inline grant(i, zx) {
  preds[i] = 0;
#ifndef NO_OWNER_CHECK
  if
  :: osid[i] != sess[i] || slost[i] -> fail(i, R_ESESSION)
  :: else ->
#else
  if
  :: true ->
#endif
    if
    :: wdraw[i] -> send_delete(i)
    :: else ->
      st[i] = C_HELD;
      wasg[i] = 1;
      new_attempt(i);
      printf("MODEL: client %d granted (token %d)\n", i, ctok[i]);
      check_grant(i, zx)
    fi
  fi
}

/* suffix_exhausted() (P1): our node must carry a regular suffix, else it
 * is deleted and the acquire fails with EEXHAUSTED. Sets n_ = 1 if so. */
inline suffix_exhausted(i) {
#ifndef NO_EXHAUSTED
  if
  :: exhausted(node[i]) -> exh[i] = 1; wdraw[i] = 1; abrc[i] = R_EEXHAUSTED; send_delete(i); n_ = 1
  :: else -> n_ = 0
  fi
#else
  n_ = 0
#endif
}

/* place(): from a listing (l: bit 7 ours is there, bits 0-6 blockers). */
inline place(i, l, zx) {
  if
  :: !(l & 128) -> finish(i, R_ELOST) /* someone deleted our node */
  :: else ->
    preds[i] = l & 127;
    if
    :: wdraw[i] -> send_delete(i)
    :: !wdraw[i] && preds[i] == 0 -> grant(i, zx)
    :: else -> send_watch(i)
    fi
  fi
}

/* advance(): the nearest blocker is gone. With no other blocker listed,
 * one read of our own node decides (P3, then P2); otherwise list again.
 * zx: when the deletion happened (only the variant without the read
 * grants on it). */
inline advance(i, zx) {
  nearest(i, n_);
  preds[i] = preds[i] & ~bit(n_);
#ifdef NO_PREMISE
  preds[i] = 0; /* the old shortcut: the predecessor's deletion decides */
#endif
  if
  :: preds[i] == 0 ->
#ifdef NO_CONFIRM
    grant(i, zx) /* the old way: grant on the event, our node unread */
#else
    send_confirm(i)
#endif
  :: else -> st[i] = C_LIST; send_list(i)
  fi
}

/* found_by_uuid() */
inline found_by_uuid(i, s) {
  if
  :: s != NONE -> node[i] = s; send_stat(i)
  :: s == NONE && wdraw[i] -> finish(i, R_ETIMEDOUT)
  :: else -> st[i] = C_CREATE; send_create(i)
  fi
}

/* zkr__queue_reconnected(): the own-node watch first, then the deferred
 * request again (resend()). */
inline reconnected(i) {
  n_ = dfr[i];
  dfr[i] = 0;
  if
  :: ownstep[i] && node_matters(i) -> send_own_watch(i)
  :: else
  fi;
  if
  :: n_ && st[i] == C_RECOVER -> send_recover(i)
  :: n_ && st[i] == C_CHECK -> send_stat(i)
  :: n_ && st[i] == C_LIST -> send_list(i)
  :: n_ && st[i] == C_WAIT -> send_watch(i)
  :: n_ && st[i] == C_RELEASE -> send_delete(i)
  :: else
  fi
}

/* One message on the completion thread. op_begin(): a reply concerns the
 * contender only if it belongs to the current attempt (P6). */
#define current(i) (mg == gen[i] && st[i] != C_DONE)

inline handle(i) {
  if
  :: mt == M_CREATE -> /* create_done() */
    if
    :: !current(i) || st[i] != C_CREATE ->
      if
      :: mr == ZOK -> orph[i] = orph[i] | bit(ma) /* nobody adopts it */
      :: else
      fi
    :: mr == ZOK ->
      node[i] = ma;
      ctok[i] = czx[ma];
      osid[i] = own[ma];
      suffix_exhausted(i);
      if
      :: !n_ -> st[i] = C_LIST /* the pipelined listing is on its way */
      :: else
      fi
    :: else -> st[i] = C_RECOVER; dfr[i] = 1 /* connection loss */
    fi
  :: mt == M_LIST -> /* list_done() */
    if
    :: current(i) && st[i] == C_LIST && mr == ZOK -> place(i, ma, mz)
    :: current(i) && (st[i] == C_LIST || st[i] == C_RECOVER) && mr == ZCONNLOSS -> dfr[i] = 1
    :: else -> assert(!(current(i) && st[i] == C_RECOVER && mr == ZOK))
    fi
  :: mt == M_RLIST -> /* list_done() in C_RECOVER */
    if
    :: current(i) && st[i] == C_RECOVER && mr == ZOK -> found_by_uuid(i, ma)
    :: current(i) && st[i] == C_RECOVER && mr == ZCONNLOSS -> dfr[i] = 1
    :: else
    fi
  :: mt == M_STAT -> /* stat_done() */
    if
#ifndef NO_OWNER_CHECK
    :: current(i) && st[i] == C_CHECK && mr == ZOK && ma == sess[i] ->
#else
    :: current(i) && st[i] == C_CHECK && mr == ZOK ->
#endif
#ifndef STALE_TOKEN
      ctok[i] = czx[node[i]];
#endif
      osid[i] = ma;
      if
      :: wdraw[i] -> send_delete(i)
      :: else ->
        suffix_exhausted(i);
        if
        :: !n_ -> st[i] = C_LIST; send_list(i)
        :: else
        fi
      fi
    :: current(i) && st[i] == C_CHECK && mr != ZCONNLOSS ->
      /* not ours in this session, or gone: a new name (uuid) */
      if
      :: mr == ZOK -> orph[i] = orph[i] | bit(node[i])
      :: else
      fi;
      node[i] = NONE;
      ntags[i]++;
      tag[i] = i + NC * ntags[i];
      st[i] = C_CREATE;
      send_create(i)
    :: current(i) && st[i] == C_CHECK && mr == ZCONNLOSS -> dfr[i] = 1
    :: else
    fi
  :: mt == M_WATCH -> /* watch_result() */
    if
    :: mr == ZOK && mg == pw_gen[i] -> pw_act[i] = 1 /* the client knows the watch */
    :: else
    fi;
    if
#ifndef FALSE_GIVEUP
    :: current(i) && st[i] == C_WAIT && mr == ZOK -> skip /* a live contender ahead: wait */
#else
    :: current(i) && st[i] == C_WAIT && mr == ZOK -> fail(i, R_ETIMEDOUT) /* nobody asked to give up */
#endif
#ifndef LOST_WAKEUP
    :: current(i) && st[i] == C_WAIT && mr == ZNONODE -> advance(i, mz)
#endif
    :: current(i) && st[i] == C_WAIT && mr == ZCONNLOSS -> dfr[i] = 1
    :: else
    fi
  :: mt == M_OWN -> /* own_read_done(), K_OWNWATCH */
    if
    :: mr == ZOK -> ow_act[i] = 1
    :: else
    fi;
    if
    :: node_matters(i) && mr == ZNONODE -> node_gone(i)
    :: node_matters(i) && mr == ZCONNLOSS -> ownstep[i] = 1
    :: else
    fi
  :: mt == M_CONFIRM -> /* own_read_done(), K_CONFIRM */
    if
    :: ma && mr == ZOK -> ownarm[i] = 1; ow_act[i] = 1
    :: else
    fi;
    if
    :: current(i) && st[i] == C_CONFIRM && mr == ZOK -> grant(i, mz)
    :: current(i) && st[i] == C_CONFIRM && mr == ZNONODE -> finish(i, R_ELOST)
    :: current(i) && st[i] == C_CONFIRM && mr == ZCONNLOSS -> st[i] = C_LIST; dfr[i] = 1
    :: else
    fi
  :: mt == M_DELETE -> /* delete_done() */
    if
    :: current(i) && st[i] == C_RELEASE && mr == ZNONODE && wasg[i] && !wdraw[i] && !dunsure[i] ->
      finish(i, R_ELOST) /* released a hold someone else had deleted */
    :: current(i) && st[i] == C_RELEASE && mr == ZNONODE && wdraw[i] && abrc[i] == 0 && !dunsure[i] ->
      finish(i, R_ELOST)
    :: current(i) && st[i] == C_RELEASE && mr != ZCONNLOSS ->
      n_ = (abrc[i] != 0 -> abrc[i] : (wdraw[i] -> R_ETIMEDOUT : R_OK));
      finish(i, n_)
    :: current(i) && st[i] == C_RELEASE && mr == ZCONNLOSS ->
      dunsure[i] = 1; dfr[i] = 1 /* it may have run; keep trying */
    :: else
    fi
  :: mt == E_PRED -> /* ticket_watcher(), predecessor ticket */
    pw_act[i] = 0;
    if
    :: mg == gen[i] && st[i] == C_WAIT -> advance(i, mz)
    :: else
    fi
  :: mt == E_OWN -> /* ticket_watcher(), own ticket */
    ow_act[i] = 0;
    if
#ifndef NO_OWN_EVENT
    :: node_matters(i) -> node_gone(i)
#endif
    :: else
    fi
  :: mt == E_CONN -> reconnected(i)
  fi
}

/* zkr__queue_session_lost(): the session is declared lost (our own clock,
 * src/session.c lose()): waits end, holds are lost, our nodes become
 * orphans (the server may still keep the session). */
inline session_lost_terminal(i) {
  slost[i] = 1;
  if
  :: st[i] == C_DONE -> skip
  :: else ->
#ifndef NO_LOSS_ORPHAN
    if
    :: node[i] != NONE && st[i] != C_LOST -> orph[i] = orph[i] | bit(node[i])
    :: else
    fi;
#endif
    if
    :: node[i] == NONE && (st[i] == C_CREATE || st[i] == C_RECOVER) -> orphp[i] = tag[i] + 1
    :: else
    fi;
    if
    :: st[i] == C_HELD || st[i] == C_LOST -> lose_hold(i, R_ESESSION); gen[i]++
    :: else -> finish(i, R_ESESSION)
    fi
  fi
}

inline session_lost(i) {
#ifndef RENEW
  session_lost_terminal(i)
#else
  if
  :: sess[i] == i && st[i] != C_DONE ->
    /* Curator's way: the recipe carries on over a new session; what was
     * in flight is still answered, and the state's request is sent again
     * once connected (the connection of the new session). */
    sess[i] = i + NC;
    disc[i] = 1;
    lose_hold(i, R_ESESSION);
    if
    :: st[i] == C_RECOVER || st[i] == C_CHECK || st[i] == C_LIST || st[i] == C_WAIT || st[i] == C_RELEASE -> dfr[i] = 1
    :: else
    fi
  :: else -> session_lost_terminal(i)
  fi
#endif
}

/* A connection loss (or the server closing an expired session's
 * connection): unprocessed replies become CONNLOSS; events of registered
 * watches come again after the reconnection, the others are lost; the
 * server forgets the watches the client never saw registered. */
inline connloss(j) {
  disc[j] = 1;
  n_ = len(ch[j]);
  do
  :: n_ > 0 ->
    ch[j]?mt, mg, mr, ma, mz;
    if
    :: mt < E_FIRST -> put(j, mt, mg, ZCONNLOSS, ma, 0)
    :: mt == E_CONN -> put(j, mt, mg, mr, ma, mz)
    :: mt == E_OWN && ow_act[j] -> re_own[j] = 1
    :: mt == E_PRED && pw_act[j] -> re_pred[j] = 1; re_pgen[j] = mg; re_pzx[j] = mz
    :: else
    fi;
    n_--
  :: else -> break
  od;
  if
  :: ow_slot[j] != 0 && !ow_act[j] -> ow_slot[j] = 0
  :: else
  fi;
  if
  :: pw_slot[j] != 0 && !pw_act[j] -> pw_slot[j] = 0
  :: else
  fi
}

/* session_watcher(), ZOO_CONNECTED_STATE: the re-armed events follow. */
inline reconnect(j) {
  disc[j] = 0;
  put(j, E_CONN, 0, 0, 0, zxid);
  if
  :: re_own[j] -> re_own[j] = 0; put(j, E_OWN, 0, 0, 0, zxid)
  :: else
  fi;
  if
  :: re_pred[j] -> re_pred[j] = 0; put(j, E_PRED, re_pgen[j], 0, 0, re_pzx[j])
  :: else
  fi
}

/* The server expires session x: its nodes go, its connection closes. */
inline expire(x) {
  sexp[x] = 1;
  k_ = 0;
  do
  :: k_ < nslot ->
    if
    :: ex[k_] && own[k_] == x -> srv_delete(k_, 0)
    :: else
    fi;
    k_++
  :: else -> break
  od;
  skip /* a loop must not end a d_step */
}

#define waiting(i) (st[i] == C_CREATE || st[i] == C_RECOVER || st[i] == C_CHECK || st[i] == C_LIST || \
                    st[i] == C_WAIT || st[i] == C_CONFIRM)

/* A client: one acquire, hold, release (recipes/lock.c zkr_lock_acquire(),
 * src/holds.c zkr__holds_acquire(), zkr__holds_release()). */
proctype client(byte i) {
  d_step { /* zkr__contender_start() */
    node[i] = NONE;
    tag[i] = i;
    send_create(i)
  }
  do
  :: d_step { nempty(ch[i]) -> ch[i]?mt, mg, mr, ma, mz; handle(i) }
#ifndef HOLD_FOREVER
  :: d_step { st[i] == C_HELD -> send_delete(i) } /* zkr__contender_release() */
#endif
  :: d_step { st[i] == C_LOST -> finish(i, rc[i]) } /* zkr__contender_release() */
  :: d_step { /* zkr__contender_withdraw(): the caller gave up waiting */
      faults < MAXF && waiting(i) && !wdraw[i] -> faults++;
      wdraw[i] = 1;
      gaveup[i] = 1;
      if
      :: st[i] == C_LIST || st[i] == C_WAIT || st[i] == C_CONFIRM -> send_delete(i)
      :: else /* deleted once it is known to be ours */
      fi
    }
#ifndef NO_OWNWATCH
  :: d_step { /* zkr__queue_arm(): the own-node watch falls due */
      !ownarm[i] && !disc[i] && node[i] != NONE && (st[i] == C_LIST || st[i] == C_WAIT || st[i] == C_HELD) ->
      send_own_watch(i)
    }
#endif
  :: d_step { sdl[sess[i]] && !slost[i] -> session_lost(i) } /* event_thread(): the deadline passed */
  :: d_step { /* send_orphan_deletes() */
      orph[i] != 0 && !disc[i] && !sexp[sess[i]] ->
      k_ = 0;
      do
      :: orph[i] & bit(k_) -> break
      :: else -> k_++
      od;
      orph[i] = orph[i] & ~bit(k_);
      if
      :: ex[k_] -> srv_delete(k_, 0)
      :: else
      fi
    }
  :: d_step { /* orphan_listed(): every node carrying our uuid */
      orphp[i] != 0 && !disc[i] && !sexp[sess[i]] ->
      k_ = 0;
      do
      :: k_ < nslot -> if
                       :: ex[k_] && tagof[k_] + 1 == orphp[i] -> orph[i] = orph[i] | bit(k_)
                       :: else
                       fi; k_++
      :: else -> break
      od;
      orphp[i] = 0
    }
  :: d_step { disc[i] && !sexp[sess[i]] -> reconnect(i) }
  :: st[i] == C_DONE && ((orph[i] == 0 && orphp[i] == 0 && empty(ch[i])) || sexp[sess[i]]) -> break
  od;
  fin[i] = 1;
  ended++
}

/* Faults, bounded by MAXF, in any order at any time. */
#define CAN_CUT(x) (faults < MAXF && !fin[x] && !disc[x] && !sexp[sess[x]])
#define CAN_DELETE(x) (faults < MAXF && x < nslot && ex[x])
#define CAN_PASS(x) (faults < MAXF && !sdl[x] && !sexp[x] && sess[x % NC] == x && !fin[x % NC])
#define CAN_EXPIRE(x) (sdl[x] && !sexp[x])
/* The server expires session x: its connection closes too. */
#define EXPIRE(x) expire(x); if :: sess[x % NC] == x && !disc[x % NC] -> connloss(x % NC) :: else fi

active proctype faults_proc() {
end:
  do
  /* a connection loss */
  :: d_step { CAN_CUT(0) -> faults++; connloss(0) }
  :: d_step { CAN_CUT(1) -> faults++; connloss(1) }
#if NC > 2
  :: d_step { CAN_CUT(2) -> faults++; connloss(2) }
#endif
  /* another client deletes any node */
  :: d_step { CAN_DELETE(0) -> faults++; srv_delete(0, 1) }
  :: d_step { CAN_DELETE(1) -> faults++; srv_delete(1, 1) }
#if NSLOT > 2
  :: d_step { CAN_DELETE(2) -> faults++; srv_delete(2, 1) }
#endif
#if NSLOT > 3
  :: d_step { CAN_DELETE(3) -> faults++; srv_delete(3, 1) }
#endif
#if NSLOT > 4
  :: d_step { CAN_DELETE(4) -> faults++; srv_delete(4, 1) }
#endif
#if NSLOT > 5
  :: d_step { CAN_DELETE(5) -> faults++; srv_delete(5, 1) }
#endif
#if NSLOT > 6
  :: d_step { CAN_DELETE(6) -> faults++; srv_delete(6, 1) }
#endif
  /* a session's validity deadline passes (a paused process, a slow
   * network): its client will step down, and only then may the server
   * expire the session */
  :: d_step { CAN_PASS(0) -> faults++; sdl[0] = 1 }
  :: d_step { CAN_PASS(1) -> faults++; sdl[1] = 1 }
#if NSESS > 2
  :: d_step { CAN_PASS(2) -> faults++; sdl[2] = 1 }
#endif
#if NSESS > 3
  :: d_step { CAN_PASS(3) -> faults++; sdl[3] = 1 }
  :: d_step { CAN_PASS(4) -> faults++; sdl[4] = 1 }
  :: d_step { CAN_PASS(5) -> faults++; sdl[5] = 1 }
#endif
  /* the server expires a session (never before its deadline: the margin) */
  :: d_step { CAN_EXPIRE(0) -> EXPIRE(0) }
  :: d_step { CAN_EXPIRE(1) -> EXPIRE(1) }
#if NSESS > 2
  :: d_step { CAN_EXPIRE(2) -> EXPIRE(2) }
#endif
#if NSESS > 3
  :: d_step { CAN_EXPIRE(3) -> EXPIRE(3) }
  :: d_step { CAN_EXPIRE(4) -> EXPIRE(4) }
  :: d_step { CAN_EXPIRE(5) -> EXPIRE(5) }
#endif
  od;
  skip /* a loop must not end a d_step */
}

init {
  atomic {
#ifdef SEQLIMIT
    lim = 2;
    if
    :: wrap = 0
    :: wrap = 1
    fi;
#endif
    k_ = 0;
    do
    :: k_ < NC ->
      sess[k_] = k_;
#if RWLOCK == 2
      kind[k_] = (k_ != 1);
#elif defined(RWLOCK)
      kind[k_] = (k_ == 1);
#else
      kind[k_] = 1;
#endif
      k_++
    :: else -> break
    od;
    k_ = 0;
    do
    :: k_ < NC -> run client(k_); k_++
    :: else -> break
    od
  }
  /* Every client is done: no node may be left (orphans deleted, or the
   * session expired). */
end_wait:
  d_step {
    ended == NC;
    k_ = 0;
    do
    :: k_ < nslot ->
      /* (a session abandoned for a new one is the server's to expire) */
      if
      :: ex[k_] && sess[own[k_] % NC] == own[k_] -> printf("MODEL: NODE LEFT: node %d of client %d\n", k_, own[k_] % NC)
      :: else
      fi;
      assert(!ex[k_] || sess[own[k_] % NC] != own[k_]);
      k_++
    :: else -> break
    od;
    /* Every client ended granted, or told a true reason. */
    k_ = 0;
    do
    :: k_ < NC ->
      if
      :: (rc[k_] == R_OK && !wasg[k_]) || (rc[k_] == R_ETIMEDOUT && !gaveup[k_]) || (rc[k_] == R_ELOST && !hit[k_] && !sdl[k_] && !sdl[(k_ + NC) % NSESS]) ||
         (rc[k_] == R_ESESSION && !sdl[k_] && !sdl[(k_ + NC) % NSESS]) || (rc[k_] == R_EEXHAUSTED && !exh[k_]) ->
        printf("MODEL: NO CAUSE: client %d ended with result %d\n", k_, rc[k_]);
        nocause = 1
      :: else
      fi;
      k_++
    :: else -> break
    od;
    assert(!nocause)
  }
}
