/* zkrecipes: ZooKeeper coordination recipes for C. The umbrella header. */
#ifndef ZKR_ZKR_H
#define ZKR_ZKR_H

#include <zkr/error.h>
#include <zkr/version.h>
#include <zkr/session.h>
#include <zkr/lock.h>
#include <zkr/multilock.h>
#include <zkr/election.h>
#include <zkr/participants.h>
#include <zkr/rwlock.h>
#include <zkr/semaphore.h>
#include <zkr/once.h>
#include <zkr/barrier.h>
#include <zkr/async.h>

#endif
