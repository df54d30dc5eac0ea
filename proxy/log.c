#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static struct {
	int level;
	int format;
	FILE *file;
} logger = { LOG_INFO, LOG_FORMAT_LOGFMT, NULL };

static const char *const level_names[] = { "debug", "info", "warning", "error" };

bool log_enabled(enum log_level level)
{
	return (int)level >= logger.level;
}

bool log_reconfigure(const struct ug_config *cfg, char *err, size_t errlen)
{
	logger.level = cfg->log_level;
	logger.format = cfg->log_format;
	if (logger.file) {
		fclose(logger.file);
		logger.file = NULL;
	}
	if (cfg->logfile && *cfg->logfile) {
		logger.file = fopen(cfg->logfile, "a");
		if (!logger.file) {
			snprintf(err, errlen, "logfile: cannot open %s: %s", cfg->logfile, strerror(errno));
			return false;
		}
		setvbuf(logger.file, NULL, _IOLBF, 0);
	}
	return true;
}

bool log_open(const struct ug_config *cfg, char *err, size_t errlen)
{
	return log_reconfigure(cfg, err, errlen);
}

void log_close(void)
{
	if (logger.file)
		fclose(logger.file);
	logger.file = NULL;
}

/* Appends s to the line, quoted as the format needs. */
static size_t put_value(char *buf, size_t off, size_t len, const char *s, bool json)
{
	bool quote = json || *s == '\0' || strpbrk(s, " =\"\\\t\n\r") != NULL;
	if (quote && off < len)
		buf[off++] = '"';
	for (; *s && off + 7 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			buf[off++] = '\\';
			buf[off++] = (char)ch;
		} else if (ch == '\n') {
			buf[off++] = '\\';
			buf[off++] = 'n';
		} else if (ch < 0x20) {
			off += (size_t)snprintf(buf + off, len - off, "\\u%04x", ch);
		} else {
			buf[off++] = (char)ch;
		}
	}
	if (quote && off < len)
		buf[off++] = '"';
	return off;
}

static size_t put_pair(char *buf, size_t off, size_t len, const char *key, const char *value, bool json)
{
	if (off + 4 >= len)
		return off;
	if (json) {
		off += (size_t)snprintf(buf + off, len - off, "%s\"%s\":", off > 1 ? "," : "", key);
	} else {
		off += (size_t)snprintf(buf + off, len - off, "%s%s=", off ? " " : "", key);
	}
	if (off >= len)
		return len - 1;
	return put_value(buf, off, len, value, json);
}

static void format_time(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

void log_event(enum log_level level, const char *event, uint64_t conn, const char *addr, ...)
{
	if (!log_enabled(level))
		return;
	bool json = logger.format == LOG_FORMAT_JSON;
	char line[4096], ts[40], id[24];
	size_t off = 0, len = sizeof(line) - 2;
	format_time(ts, sizeof(ts));
	if (json)
		line[off++] = '{';
	off = put_pair(line, off, len, "ts", ts, json);
	off = put_pair(line, off, len, "level", level_names[level], json);
	off = put_pair(line, off, len, "event", event, json);
	if (conn) {
		snprintf(id, sizeof(id), "%llu", (unsigned long long)conn);
		off = put_pair(line, off, len, "conn", id, json);
	}
	if (addr)
		off = put_pair(line, off, len, "addr", addr, json);
	va_list ap;
	va_start(ap, addr);
	for (;;) {
		const char *key = va_arg(ap, const char *);
		if (!key)
			break;
		const char *value = va_arg(ap, const char *);
		off = put_pair(line, off, len, key, value ? value : "", json);
	}
	va_end(ap);
	if (json && off < len)
		line[off++] = '}';
	line[off++] = '\n';
	line[off] = '\0';
	fputs(line, stderr);
	if (logger.file)
		fputs(line, logger.file);
}
