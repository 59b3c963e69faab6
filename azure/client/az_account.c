/*
 * az_account.c -- an Azure Table account as an mt_account: the client's
 * Create/Delete/Query Tables behind the core's account interface, and its
 * tables as az_client_table views.
 *
 * A list is read whole (the client follows every continuation) and paged
 * here, in code-point order, as the memory account pages.
 */
#include "az_client.h"

#include <stdlib.h>

typedef struct az_account {
    mt_account base;
    az_client *c; /* borrowed */
} az_account;

static az_client *client_of(mt_account *a)
{
    return ((az_account *)a)->c;
}

static mt_table *acct_open(mt_account *a, const char *name, mt_status *st)
{
    return az_client_table(client_of(a), name, st);
}

static mt_status acct_create(mt_account *a, const char *name, bool *created)
{
    bool made = false;
    mt_status st = az_client_table_create(client_of(a), name, &made);
    if (created)
        *created = mt_is_ok(&st) && made;
    if (mt_is_ok(&st) && !made)
        st = mt_error(409, MT_ERR_TABLE_EXISTS, "The table specified already exists.");
    return st;
}

static mt_status acct_remove(mt_account *a, const char *name)
{
    return az_client_table_delete(client_of(a), name);
}

static mt_status acct_list(mt_account *a, const char *from, size_t max, char ***names, size_t *n,
                           char **next)
{
    char **all = NULL;
    size_t k = 0;
    mt_status st = az_client_tables_list(client_of(a), &all, &k);
    if (!mt_is_ok(&st)) {
        *names = NULL;
        *n = 0;
        if (next)
            *next = NULL;
        return st;
    }
    return mt_names_page(all, k, from, max, names, n, next);
}

static void acct_destroy(mt_account *a)
{
    free(a);
}

static const mt_account_ops az_account_ops = {
    .open = acct_open,
    .create = acct_create,
    .remove = acct_remove,
    .list = acct_list,
    .destroy = acct_destroy,
};

mt_account *az_client_account(az_client *c)
{
    az_account *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->base.ops = &az_account_ops;
    a->c = c;
    return &a->base;
}
