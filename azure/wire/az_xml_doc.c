/*
 * az_xml_doc.c -- the hardened libxml2 reader and the writer set-up that
 * every XML body goes through: the Atom payloads and the plain XML bodies
 * of az_xml.c.
 *
 * The reader forbids the network, never substitutes entities, never loads
 * a DTD and stops at the first DOCTYPE: an external entity or an expansion
 * bomb never gets as far as the tree, and the real service refuses DTDs as
 * well. libxml2 bounds nesting depth and text length itself (no
 * XML_PARSE_HUGE); the size of the body is bounded here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlwriter.h>

#include "az_internal.h"

#define AZ_XML_E_TOO_LARGE "RequestBodyTooLarge"

/* No NOENT, DTDLOAD, DTDATTR, XINCLUDE or HUGE: entities stay unexpanded,
 * no subset is fetched and libxml2's depth and length limits stay on. */
#define AZ_XML_OPTIONS                                                                             \
    (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)

/* ------------------------------------------------------------------------ */
/* The reader.                                                               */

static void az_xml_refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext,
                              const xmlChar *sys)
{
    xmlParserCtxtPtr p = ctx;
    (void)name;
    (void)ext;
    (void)sys;
    if (p->_private)
        *(bool *)p->_private = true;
    xmlStopParser(p);
}

/* libxml2 reports encoding and I/O errors through its thread's error
 * handler even with XML_PARSE_NOERROR; on hostile input that would be a
 * line on stderr per request. The handler is swapped for the parse only
 * and put back, so a caller's own handler survives. */
typedef struct az_xml_quiet {
    xmlStructuredErrorFunc fn;
    void *ctx;
} az_xml_quiet;

static void az_xml_drop_error(void *ctx, xmlErrorPtr err)
{
    (void)ctx;
    (void)err;
}

static void az_xml_quiet_begin(az_xml_quiet *q)
{
    q->fn = xmlStructuredError;
    q->ctx = xmlStructuredErrorContext;
    xmlSetStructuredErrorFunc(NULL, az_xml_drop_error);
}

static void az_xml_quiet_end(const az_xml_quiet *q)
{
    xmlSetStructuredErrorFunc(q->ctx, q->fn);
}

xmlDocPtr az_xml_doc_read(const char *body, size_t len, size_t max, const char *code, mt_status *st)
{
    bool saw_dtd = false;
    int ns_ok;
    xmlParserCtxtPtr ctxt;
    xmlDocPtr doc;
    az_xml_quiet quiet;

    if (len > max || len > INT32_MAX) {
        *st = mt_error(413, AZ_XML_E_TOO_LARGE, "The request body is too large.");
        return NULL;
    }
    xmlInitParser();
    az_xml_quiet_begin(&quiet);
    ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        az_xml_quiet_end(&quiet);
        *st = mt_oom();
        return NULL;
    }
    /* The SAX handler belongs to this context alone. */
    ctxt->_private = &saw_dtd;
    ctxt->sax->internalSubset = az_xml_refuse_dtd;
    doc = xmlCtxtReadMemory(ctxt, body ? body : "", (int)len, NULL, NULL, AZ_XML_OPTIONS);
    /* libxml2 keeps a document whose only faults are namespace errors
     * (an undeclared prefix, a name with two colons); the service does
     * not. */
    ns_ok = ctxt->nsWellFormed;
    xmlFreeParserCtxt(ctxt);
    az_xml_quiet_end(&quiet);
    if (doc && ns_ok && !saw_dtd && xmlDocGetRootElement(doc)) {
        *st = mt_ok();
        return doc;
    }
    xmlFreeDoc(doc);
    if (saw_dtd)
        *st = mt_error(400, code, "A document type declaration is not allowed.");
    else
        *st = mt_error(400, code, "The XML is not well-formed.");
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The writer.                                                               */

/* A writer into a fresh buffer, with the XML declaration written. The
 * declaration is written by hand: xmlTextWriterStartDocument would name
 * the encoding "UTF-8" where the service writes "utf-8", and would add an
 * output converter that the UTF-8 text written here does not need. */
xmlTextWriterPtr az_xml_writer_new(xmlBufferPtr *buf, bool standalone)
{
    static const char decl[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";
    static const char decl_sa[] = "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>";
    xmlTextWriterPtr w;

    xmlInitParser();
    *buf = xmlBufferCreate();
    if (!*buf)
        return NULL;
    w = xmlNewTextWriterMemory(*buf, 0);
    if (w && xmlTextWriterWriteRaw(w, BAD_CAST(standalone ? decl_sa : decl)) >= 0)
        return w;
    if (w)
        xmlFreeTextWriter(w);
    xmlBufferFree(*buf);
    *buf = NULL;
    return NULL;
}

/* Closes what is open and returns the document as a malloc'd string (the
 * caller's), or NULL when !ok or on a writer error. Always frees w, buf. */
char *az_xml_writer_finish(xmlTextWriterPtr w, xmlBufferPtr buf, bool ok, size_t *len)
{
    char *out = NULL;

    if (ok && xmlTextWriterEndDocument(w) < 0)
        ok = false;
    xmlFreeTextWriter(w); /* flushes into buf */
    if (ok) {
        size_t n = (size_t)xmlBufferLength(buf);
        out = malloc(n + 1);
        if (out) {
            memcpy(out, xmlBufferContent(buf), n);
            out[n] = '\0';
            if (len)
                *len = n;
        }
    }
    xmlBufferFree(buf);
    return out;
}
