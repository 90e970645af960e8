/*
 * pam-driver.h - what the PAM test drivers (pam-loop, pam-failwalk)
 * share: the conversation, which answers every echo-off prompt with one
 * password, accepts information and error messages and refuses anything
 * else; and the PAM operations named on their command lines.
 */
#ifndef PO_TESTS_PAM_DRIVER_H
#define PO_TESTS_PAM_DRIVER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <security/pam_appl.h>

struct conv_data {
    const char *password;
};

static void free_responses(struct pam_response *r, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        if (r[i].resp != NULL) {
            explicit_bzero(r[i].resp, strlen(r[i].resp));
            free(r[i].resp);
        }
    }
    free(r);
}

static int conv(int n, const struct pam_message **msg,
                struct pam_response **resp, void *appdata)
{
    const struct conv_data *d = appdata;
    struct pam_response *r;
    int i;

    if (n <= 0 || n > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    if ((r = calloc((size_t)n, sizeof(*r))) == NULL)
        return PAM_BUF_ERR;
    for (i = 0; i < n; i++) {
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
            if ((r[i].resp = strdup(d->password)) == NULL) {
                free_responses(r, n);
                return PAM_BUF_ERR;
            }
            break;
        case PAM_TEXT_INFO:
        case PAM_ERROR_MSG:
            break;
        default:
            free_responses(r, n);
            return PAM_CONV_ERR;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

/* Read the password (the first line of standard input, without its
 * newline) into password (size n) and set up pc to answer with it.
 * Standard input is unbuffered from here on: no stdio buffer of ours
 * keeps a copy of the password (a test looks for copies in the driver's
 * memory, pam-loop -w and -S). */
static void conv_init(struct pam_conv *pc, struct conv_data *d, char *password,
                      size_t n)
{
    size_t len;

    (void)setvbuf(stdin, NULL, _IONBF, 0);
    if (fgets(password, (int)n, stdin) == NULL)
        password[0] = '\0';
    len = strlen(password);
    if (len > 0 && password[len - 1] == '\n')
        password[--len] = '\0';
    d->password = password;
    pc->conv = conv;
    pc->appdata_ptr = d;
}

/* Run one operation (a name op_known accepts) on h. */
static int run_op(pam_handle_t *h, const char *op)
{
    if (strcmp(op, "acct") == 0)
        return pam_acct_mgmt(h, 0);
    if (strcmp(op, "estab") == 0)
        return pam_setcred(h, PAM_ESTABLISH_CRED);
    if (strcmp(op, "refresh") == 0)
        return pam_setcred(h, PAM_REFRESH_CRED);
    if (strcmp(op, "open") == 0)
        return pam_open_session(h, 0);
    if (strcmp(op, "close") == 0)
        return pam_close_session(h, 0);
    if (strcmp(op, "delete") == 0)
        return pam_setcred(h, PAM_DELETE_CRED);
    return -1;
}

#define MAX_OPS 16

static int op_known(const char *op)
{
    static const char *const names[] = {"acct", "estab", "refresh",
                                        "open", "close", "delete"};
    size_t k;

    for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (strcmp(op, names[k]) == 0)
            return 1;
    return 0;
}

/* Split the comma-separated list (modified) into ops[0..*n-1]: -1 when
 * it names an unknown operation or more than MAX_OPS. */
static int parse_ops(char *list, const char *ops[MAX_OPS], int *n)
{
    char *tok, *save = NULL;

    *n = 0;
    for (tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_OPS || !op_known(tok))
            return -1;
        ops[(*n)++] = tok;
    }
    return 0;
}

#endif
