/* mta/init/upgrade.c -- moat upgrade FILE; see upgrade.h */
#include "mta/init/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/loop.h>

#include "mta/init/devices.h"
#include "mta/init/modules.h"
#include "mta/init/slots.h"
#include "mta/net/log.h"
#include "policy/kv.h"

#define IMAGE_DIR "/upgrade"

/* This boot's slot and trial flag from the kernel command line. */
static int boot_slot(char *slot, int *trial)
{
	char buf[4096];
	struct kv kv;
	size_t pos = 0;
	long len = initdev_read_small("/proc/cmdline", buf, sizeof buf);

	*slot = 0;
	*trial = 0;
	while (len > 0 && kv_cmdline_next(buf, (size_t)len, &pos, &kv)) {
		if (kv_is(&kv, "moat.slot") && kv.vallen == 1 && (kv.val[0] == 'a' || kv.val[0] == 'b'))
			*slot = kv.val[0];
		else if (kv_is(&kv, "moat.trial") && kv.vallen == 1 && kv.val[0] == '1')
			*trial = 1;
	}
	return *slot != 0 ? 0 : -1;
}

/* FILE on a free loop device, read-only, detached when unmounted. */
static int attach(const char *file, char *dev, size_t cap)
{
	struct loop_config lc;
	int ctl, n, fd = -1, ffd;

	if ((ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC)) < 0)
		return -1;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		return -1;
	snprintf(dev, cap, "/dev/loop%d", n);
	/* devtmpfs makes the node as the kernel adds the device. */
	for (int k = 0; k < 100 && (fd = open(dev, O_RDWR | O_CLOEXEC)) < 0 && errno == ENOENT; k++)
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	if (fd < 0 || (ffd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	memset(&lc, 0, sizeof lc);
	lc.fd = (unsigned)ffd;
	lc.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
	n = ioctl(fd, LOOP_CONFIGURE, &lc);
	close(ffd);
	if (n != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int upgrade_main(int argc, char **argv)
{
	char slot, dev[64];
	int trial, lfd;
	enum slots_install_result r;

	if (argc != 2) {
		fputs("usage: moat upgrade FILE   (inside the appliance: process 1 runs it)\n", stderr);
		return 100;
	}
	if (getuid() != 0 || boot_slot(&slot, &trial) != 0) {
		fputs("moat upgrade: only inside the appliance, booted from a slot; offline, use "
		      "image/upgrade.sh DISK FILE\n", stderr);
		return 100;
	}
	if (trial) {
		log_warn("msg=\"moat upgrade: slot %c is on trial: no upgrade until it is good\"", slot);
		return 100;
	}
	modules_open("/lib/modules");
	(void)modules_load("loop");
	if (slots_mount(NULL) != 0)
		return 1;
	if ((lfd = attach(argv[1], dev, sizeof dev)) < 0) {
		log_warn("msg=\"moat upgrade: cannot attach %s: %s\"", argv[1], strerror(errno));
		slots_umount();
		return 1;
	}
	mkdir(IMAGE_DIR, 0700);
	if (mount(dev, IMAGE_DIR, "vfat", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "") != 0) {
		log_warn("msg=\"moat upgrade: %s is not a boot image (vfat): %s\"", argv[1], strerror(errno));
		close(lfd);
		slots_umount();
		return 1;
	}
	r = slots_install(slot, IMAGE_DIR);
	if (r == SLOTS_SAME)
		log_event("upgrade", "result=same file=%s running=%c", argv[1], slot);
	else if (r == SLOTS_FAILED_BEFORE)
		log_event("upgrade", "result=skipped reason=failed-before file=%s running=%c", argv[1], slot);
	umount2(IMAGE_DIR, 0);
	close(lfd);
	slots_umount();
	return r == SLOTS_INSTALLED ? 0 : r == SLOTS_ERROR ? 1 : 2;
}
