/*
 * tests/unit/testkeys.h -- test keys and self-signed certificates for
 * "keyrole.test", made once (openssl ecparam -name prime256v1 -genkey;
 * openssl genrsa 2048; openssl req -x509), shared by the unit tests that
 * run real TLS handshakes in memory.  Never use them for anything else.
 */
#ifndef MOAT_TESTS_TESTKEYS_H
#define MOAT_TESTS_TESTKEYS_H

static const char ec_key[] =
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MHcCAQEEIENe7meJfjLGIbVepCxEG9EZeLDXcCN/W+lgz9EXmxo0oAoGCCqGSM49\n"
	"AwEHoUQDQgAEp1bNX93gvhyRboKqM3nZho3pRy1Kdf6uNpiSDP+aikRStqGK7YwA\n"
	"Gz1+IacAZ9Lm/1FZ+xbN+ikMKzrhSXroNg==\n"
	"-----END EC PRIVATE KEY-----\n";
static const char ec_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBhTCCASugAwIBAgIUJ2vwA0EXO/CDpHbNiXDoOuhbtPYwCgYIKoZIzj0EAwIw\n"
	"FzEVMBMGA1UEAwwMa2V5cm9sZS50ZXN0MCAXDTI2MTEyOTA1MTMxOFoYDzIxMjYx\n"
	"MTA1MDUxMzE4WjAXMRUwEwYDVQQDDAxrZXlyb2xlLnRlc3QwWTATBgcqhkjOPQIB\n"
	"BggqhkjOPQMBBwNCAASnVs1f3eC+HJFugqozedmGjelHLUp1/q42mJIM/5qKRFK2\n"
	"oYrtjAAbPX4hpwBn0ub/UVn7Fs36KQwrOuFJeug2o1MwUTAdBgNVHQ4EFgQU2/mc\n"
	"DwTlTZUDA7lFBH8tCjXAV5QwHwYDVR0jBBgwFoAU2/mcDwTlTZUDA7lFBH8tCjXA\n"
	"V5QwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAxJPwZCdOjIpz\n"
	"uF6BiiocnFlHgkKSyUHcyWxzpIddMPQCIB7xXmhTDH7iC2tvn7XABiTnv7lcDX81\n"
	"2utIqnhVjV3J\n"
	"-----END CERTIFICATE-----\n";
static const char rsa_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDbDadaSKa5D1Tn\n"
	"pacR6UlXFqVDKsuw58np4/0LKcPThT+bNEjH1OWshLerBmCrs3FJHM7nMkPUEsV7\n"
	"kn8KQwN3WVdOlVeex30AMWBCu7MQ+BMv4kmf9+KJC1xbv+6M3pXk6dAZyjDvrxPD\n"
	"FlgYVmyXAYjHUqWRpVg4MIPIFI2rAXlBVr0K1cm9ex3EioUW9QNHNunfu0kBlKRu\n"
	"FLKLqUrAOqVCPRBorfjdoekd3a9CI+9FosvdLoHJfExS6tgfRxhyAOt7ctKvpkhe\n"
	"zaiZnCWhzzPotyN7iUC+78ZIHzfR/Ozy0pdS/LJxLG29lUXkwnISab3ces2IPLa6\n"
	"m9RaLpyjAgMBAAECggEAGCObC5Hx/Xa5DoXssUaZ9GTkdVBj/eytDX84RWCm2cpX\n"
	"Rg0u8AaAANDnRIuBX6p4k2v/SO77FoWzCXkNUt4rpZ1Mx7YhX7fwCHNofjIc+4O6\n"
	"6Y3wOxaf+iYsWVf/O7rTndQ+QHlNhzwt21O9BYGQmdtrbTuoTzJ/VEHUY9oP+oYM\n"
	"0ToUWZD5KNgO6y9tTbu5J+/AHhxkKd8AN7+AvdQO/g89V/habcvFl5DJofo2pj96\n"
	"DF9DT1Suth++TpiEsir2KTeFykS6SHQ6/kG6QH1MV5Jj5HUpyl8mvYSpC6uLec+J\n"
	"yBVcErsHd/0sAvbwOdGzYyh+e72RWFUDjUVUvUB1wQKBgQD2TwjrZl1CzgsHxHyQ\n"
	"+oq29igjh+V2ZRgpmGIHS69B3mjWgSKE9lSXA4juG+h0C8cdHz9JsZtvcdBUzo6V\n"
	"JzCSf8vrrpmYJrEoHeRXOMX6L0ASm/Y8cJd6eGv2OLzTWZpDkP5Wib7+G0rZxHEA\n"
	"UvIr4K41g5UZdhdF+fBBK2v6MwKBgQDjrBYuhtxkRj2L7LAkj8uIqO9Ls1eMxVnh\n"
	"UlcgdlMMkH7PtDYt7npw1Yv/8XHpmLBS+Hk2pYNnCGVFEEbgZsQz/Fss96aFANJo\n"
	"Q90I/L/hHoXuyvqsN4DxJJPiw7gQMxXlug1jc0cgV7OjbGHoYyrnzaI8aTOBz2v8\n"
	"DNm6FURD0QKBgDGG7uo2qSYXvEwRjGKynlXv5V5PoypNZbBnfb6tz03VZQtM6B4I\n"
	"UjYTdeM7JWDARYdrkxREbFbaceO7rRv8x12N6Pk5IJVholnIuPN47QZDngSf68F3\n"
	"el4b/MmD2yQ8bjKL4ziPdiIuZrynLXm9NAjyotUL4l0+S6u8eD0CeDHVAoGARpc0\n"
	"yXhHHVAqBRh+BNgQ4259w5r3qk4GcDZ3jTkixuKGbyARLGykyhdsMQ9LooIVKaSg\n"
	"8LCg7XFM9Pz2/NzgOL4mButCVjrLAkkIX6D+XW55WHDXCE6tTBdrQwQsLdmpEHF/\n"
	"dTZo9z46FJGmScd1pim8A78amUUW1i+l0myFngECgYB1uLajFqSAWsaX0MYo4Q+D\n"
	"IXJbq/NSv5vIazsXkA3UCR/keTRdDNdQtTSKbhO4HCdLZhgPhTHnihoRH5YvCF0S\n"
	"qlUR8wRnTrCyFFd70jGe4DiVK3e3CIXQmhcHWW5FytmJmKTasJADpYsSA9/3/jRp\n"
	"zq6a/45tq1I91hr38wmUlw==\n"
	"-----END PRIVATE KEY-----\n";
static const char rsa_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIDETCCAfmgAwIBAgIUdna0dwAE+74ddZ0gcLgYV3EZ2TEwDQYJKoZIhvcNAQEL\n"
	"BQAwFzEVMBMGA1UEAwwMa2V5cm9sZS50ZXN0MCAXDTI2MTEyOTA1MTMxOFoYDzIx\n"
	"MjYxMTA1MDUxMzE4WjAXMRUwEwYDVQQDDAxrZXlyb2xlLnRlc3QwggEiMA0GCSqG\n"
	"SIb3DQEBAQUAA4IBDwAwggEKAoIBAQDbDadaSKa5D1TnpacR6UlXFqVDKsuw58np\n"
	"4/0LKcPThT+bNEjH1OWshLerBmCrs3FJHM7nMkPUEsV7kn8KQwN3WVdOlVeex30A\n"
	"MWBCu7MQ+BMv4kmf9+KJC1xbv+6M3pXk6dAZyjDvrxPDFlgYVmyXAYjHUqWRpVg4\n"
	"MIPIFI2rAXlBVr0K1cm9ex3EioUW9QNHNunfu0kBlKRuFLKLqUrAOqVCPRBorfjd\n"
	"oekd3a9CI+9FosvdLoHJfExS6tgfRxhyAOt7ctKvpkhezaiZnCWhzzPotyN7iUC+\n"
	"78ZIHzfR/Ozy0pdS/LJxLG29lUXkwnISab3ces2IPLa6m9RaLpyjAgMBAAGjUzBR\n"
	"MB0GA1UdDgQWBBSPNYGpc+20wpPp/4ylHlCueKj1PjAfBgNVHSMEGDAWgBSPNYGp\n"
	"c+20wpPp/4ylHlCueKj1PjAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUA\n"
	"A4IBAQB4TCOp0DuDChnAm8KCqJUVE91Ef9CaqtPO9boYuHUn/Oa1B3fnzk6FuogO\n"
	"qFA4IyLtnh++uAS6f/SiTJNWBJvLsB/FPYwPsh7gfpVtgHtEcEamTkdUO/Mx5Lii\n"
	"RkQZQzyflQPxwDhq6NCAHDhHNQPxrd3VXqU1s+Tnm6dR5Spb+pqVIQubQzMs+URP\n"
	"YIYXBQZ2Hmy+nEYkxBd2aLPoTysUI4EQKYh54/pXDGYPiAnEN9i2tbRyB4d8C5v9\n"
	"HVtKiZxEW2/lK+UrGT3g/i7NXOGSM/IPRbVMj+y3LbRdmhF0AbmBtQzhGjBD4TQd\n"
	"sfki+OTB23oGh/UD4OjEgeb1JlHU\n"
	"-----END CERTIFICATE-----\n";

#endif
