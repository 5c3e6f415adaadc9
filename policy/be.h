/*
 * policy/be.h -- big-endian integers in byte buffers, for the wire formats
 * (DNS answers, the links between the roles).  The caller has checked that
 * the bytes are there.
 */
#ifndef MOAT_POLICY_BE_H
#define MOAT_POLICY_BE_H

#include <stdint.h>

static inline uint32_t be32_get(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void be32_put(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

#endif
