/*
 * ut_account.h -- the behaviour every account must show (the table
 * service's Create/Delete/Query Tables and its tables by name), as one set
 * of checks that the memory account's and the Azure account's tests both
 * run, so that the embedded backend behaves as the service does.
 */
#ifndef UT_ACCOUNT_H
#define UT_ACCOUNT_H

#include "mt.h"

/* Runs the checks on a (which must hold no tables): create and 409, names
 * case-insensitive and listed as created in code-point order, pages, a
 * table opened by name before and after it exists, delete then open,
 * recreate empty, bad names. Fails the running cmocka test. */
void ut_account_semantics(mt_account *a);

#endif
