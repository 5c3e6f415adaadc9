/*
 * tests/unit/test_confdoc.c -- the configuration reference is complete:
 * every directive the parser knows (the table in policy/conf.c, through
 * conf_directive_name()) has its row in docs/configuration.md (in a table
 * whose first column is "directive") and its ".It Ic NAME" entry in
 * docs/moat.conf.5, and neither documents a directive the parser does not
 * know.  Nothing here lists directives: one added to the table, or to
 * either document, is caught as it is.
 *
 * Run from the repository's root (make test does), or with MOAT_SRC set
 * to it.
 */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "policy/conf.h"

#define NAMES_MAX 512
#define NAME_MAX_LEN 64

struct names {
	char   name[NAMES_MAX][NAME_MAX_LEN];
	size_t n;
};

static struct names parser, markdown, manpage;

static void add(struct names *s, const char *name, size_t len)
{
	if (len == 0 || len >= NAME_MAX_LEN || s->n == NAMES_MAX)
		return;
	memcpy(s->name[s->n], name, len);
	s->name[s->n][len] = '\0';
	s->n++;
}

static int has(const struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return 1;
	return 0;
}

static FILE *open_doc(const char *rel)
{
	char path[1024];
	const char *root = getenv("MOAT_SRC");
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", root && *root ? root : ".", rel);
	if ((f = fopen(path, "r")) == NULL)
		fprintf(stderr, "cannot open %s (run from the repository's root, or set MOAT_SRC)\n",
		        path);
	return f;
}

/* The directive names of the "| directive | ..." tables: the first cell
 * of each row, "| `name` |". */
static void read_markdown(void)
{
	char line[4096];
	int in_table = 0;
	FILE *f = open_doc("docs/configuration.md");

	CHECK(f != NULL);
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		if (line[0] != '|') {
			in_table = 0;
			continue;
		}
		if (strncmp(line, "| directive |", 13) == 0) {
			in_table = 1;
			continue;
		}
		if (in_table && strncmp(line, "| `", 3) == 0) {
			const char *end = strchr(line + 3, '`');

			CHECKF(end != NULL, "configuration.md: a row's first cell: %s", line);
			if (end != NULL)
				add(&markdown, line + 3, (size_t)(end - line - 3));
		}
	}
	fclose(f);
}

/* The man page's ".It Ic name ..." entries. */
static void read_manpage(void)
{
	char line[4096];
	FILE *f = open_doc("docs/moat.conf.5");

	CHECK(f != NULL);
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, ".It Ic ", 7) == 0)
			add(&manpage, line + 7, strcspn(line + 7, " \n"));
	fclose(f);
}

/* The parser says "unknown directive" for a name it does not know. */
static int parser_knows(const char *name)
{
	static struct conf c;
	char text[NAME_MAX_LEN + 8], err[512];
	int n = snprintf(text, sizeof text, "%s x\n", name);

	conf_defaults(&c);
	if (conf_parse(text, (size_t)n, "t.conf", &c, err, sizeof err) == 0)
		return 1;
	return strstr(err, "unknown directive") == NULL;
}

static void test_parser_table(void)
{
	for (size_t i = 0; conf_directive_name(i) != NULL; i++) {
		CHECKF(parser_knows(conf_directive_name(i)), "%s", conf_directive_name(i));
		add(&parser, conf_directive_name(i), strlen(conf_directive_name(i)));
	}
	CHECKF(parser.n >= 60, "the parser's table has %zu directives", parser.n);
	/* The check above can fail. */
	CHECK(!parser_knows("frobnicate"));
}

static void test_every_directive_documented(void)
{
	read_markdown();
	read_manpage();
	CHECKF(markdown.n >= 60 && manpage.n >= 60, "found %zu in configuration.md, %zu in moat.conf.5",
	       markdown.n, manpage.n);
	for (size_t i = 0; i < parser.n; i++) {
		CHECKF(has(&markdown, parser.name[i]),
		       "docs/configuration.md has no row for the directive %s", parser.name[i]);
		CHECKF(has(&manpage, parser.name[i]),
		       "docs/moat.conf.5 has no .It Ic entry for the directive %s", parser.name[i]);
	}
}

static void test_nothing_unknown_documented(void)
{
	for (size_t i = 0; i < markdown.n; i++)
		CHECKF(has(&parser, markdown.name[i]) && parser_knows(markdown.name[i]),
		       "docs/configuration.md documents %s, which the parser does not know",
		       markdown.name[i]);
	for (size_t i = 0; i < manpage.n; i++)
		CHECKF(has(&parser, manpage.name[i]) && parser_knows(manpage.name[i]),
		       "docs/moat.conf.5 documents %s, which the parser does not know", manpage.name[i]);
}

int main(void)
{
	RUN(test_parser_table);
	RUN(test_every_directive_documented);
	RUN(test_nothing_unknown_documented);
	return t_main_end();
}
