/* version.h - the one place the version is set (the Makefile passes it). */
#ifndef PO_VERSION_H
#define PO_VERSION_H
#ifndef PO_VERSION
#define PO_VERSION "0.1.0"
#endif
#endif
