/*
 * The `local` KMS provider: versioned 256-bit master keys in files $DATA/kms/master-<N>.key
 * (32 raw bytes from the CSPRNG, mode 0600, in a directory of mode 0700, owned by the user that
 * runs Cadence). The newest file is the current version; older ones stay until a rotation retires
 * them.
 *
 * Permissions are checked on open and again on every scan and key read, and anything readable by
 * group or others is refused with the exact command that fixes it: a key that others could read
 * must be treated as leaked, so silently tightening it would hide the problem. Key bytes are read
 * straight into a cad_secret, used for one wrap or unwrap and wiped; nothing is cached.
 *
 * A wrap is AES-256-GCM under the master key with associated data
 * "cadence-kms-local/v1|<version>|<context>", so a wrapped key only unwraps for the context
 * (tenant) and version it was made for.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "vault/aead.h"
#include "vault/kms.h"

#define MASTER_KEY_LEN VAULT_AEAD_KEY_LEN

struct kms_local {
    char dir[PATH_MAX];
};

/* "master-<N>.key" with N a positive decimal of at most 9 digits, no leading zero. */
static bool parse_key_name(const char *name, int *version)
{
    static const char prefix[] = "master-";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *p = name + sizeof prefix - 1;
    if (*p < '1' || *p > '9')
        return false;
    int v = 0, digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits == 9)
            return false;
        v = v * 10 + (*p - '0');
    }
    if (strcmp(p, ".key") != 0)
        return false;
    *version = v;
    return true;
}

static int key_path(const struct kms_local *kl, int version, char *buf, size_t size)
{
    if (snprintf(buf, size, "%s/master-%d.key", kl->dir, version) >= (int)size)
        return cad_fail(CAD_EINVAL, "the master key path under %s is too long", kl->dir);
    return CAD_OK;
}

static int check_private(const char *path, const struct stat *sb, bool is_dir)
{
    if (sb->st_uid != geteuid())
        return cad_fail(CAD_EPERM,
                        "%s belongs to uid %u, but Cadence runs as uid %u; the master key must "
                        "belong to the user that runs Cadence: run `chown %u %s` as root",
                        path, (unsigned)sb->st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
    if (sb->st_mode & 077)
        return cad_fail(CAD_EPERM,
                        "%s is accessible by group or others (mode %03o); a master key %s must be "
                        "private to its owner: run `chmod %s %s`",
                        path, (unsigned)(sb->st_mode & 0777), is_dir ? "directory" : "file",
                        is_dir ? "700" : "600", path);
    return CAD_OK;
}

static int check_key_file(const char *path, const struct stat *sb)
{
    if (!S_ISREG(sb->st_mode))
        return cad_fail(CAD_EPERM,
                        "%s is not a regular file (a symbolic link?); put the key file itself "
                        "there, mode 600",
                        path);
    int rc = check_private(path, sb, false);
    if (rc)
        return rc;
    if (sb->st_size != MASTER_KEY_LEN)
        return cad_fail(CAD_ECORRUPT,
                        "%s is %lld bytes long, but a master key file is exactly %d bytes; "
                        "restore it from a backup",
                        path, (long long)sb->st_size, MASTER_KEY_LEN);
    return CAD_OK;
}

static int check_dir(const struct kms_local *kl)
{
    struct stat sb;
    if (stat(kl->dir, &sb) != 0) {
        int e = errno, code = e == ENOENT ? CAD_ENOTFOUND : CAD_EIO;
        return cad_fail(code, "cannot use %s: %s", kl->dir, strerror(e));
    }
    if (!S_ISDIR(sb.st_mode))
        return cad_fail(CAD_EIO, "%s should be the master key directory but is not a directory",
                        kl->dir);
    return check_private(kl->dir, &sb, true);
}

/* Checks the directory and every key file in it. *versions (optional) is a malloc'd list. */
static int scan(const struct kms_local *kl, int *max_version, int **versions, size_t *count)
{
    *max_version = 0;
    if (versions)
        *versions = NULL;
    if (count)
        *count = 0;
    int rc = check_dir(kl);
    if (rc)
        return rc;
    DIR *d = opendir(kl->dir);
    if (!d)
        return cad_fail(CAD_EIO, "cannot read %s: %s", kl->dir, strerror(errno));
    int *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int v;
        if (!parse_key_name(e->d_name, &v))
            continue;
        char path[PATH_MAX + NAME_MAX + 2];
        snprintf(path, sizeof path, "%s/%s", kl->dir, e->d_name);
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = cad_fail(CAD_EIO, "cannot inspect %s: %s", path, strerror(errno));
            break;
        }
        if ((rc = check_key_file(path, &sb)))
            break;
        if (v > *max_version)
            *max_version = v;
        if (versions) {
            if (n == cap) {
                cap = cap ? 2 * cap : 8;
                int *grown = realloc(list, cap * sizeof *list);
                if (!grown) {
                    rc = cad_fail(CAD_ENOMEM, "out of memory");
                    break;
                }
                list = grown;
            }
            list[n] = v;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        free(list);
        *max_version = 0;
        return rc;
    }
    if (versions)
        *versions = list;
    if (count)
        *count = n;
    return CAD_OK;
}

static int load_key(const struct kms_local *kl, int version, cad_secret **out)
{
    *out = NULL;
    char path[PATH_MAX + 32];
    int rc = key_path(kl, version, path, sizeof path);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return cad_fail(CAD_ENOTFOUND,
                            "master key version %d is missing (%s does not exist); what was "
                            "wrapped under it cannot be unwrapped until that file is restored "
                            "from a backup",
                            version, path);
        if (errno == ELOOP)
            return cad_fail(CAD_EPERM,
                            "%s is a symbolic link; put the key file itself there, mode 600", path);
        return cad_fail(CAD_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rc = cad_fail(CAD_EIO, "cannot inspect %s: %s", path, strerror(errno));
    } else if ((rc = check_key_file(path, &sb)) == CAD_OK) {
        cad_secret *key;
        if ((rc = secret_new(&key, MASTER_KEY_LEN)) == CAD_OK) {
            size_t got = 0;
            while (got < MASTER_KEY_LEN) {
                ssize_t r = read(fd, secret_data_mut(key) + got, MASTER_KEY_LEN - got);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    break;
                got += (size_t)r;
            }
            if (got != MASTER_KEY_LEN) {
                secret_free(key);
                rc = cad_fail(CAD_EIO, "cannot read all of %s", path);
            } else {
                *out = key;
            }
        }
    }
    close(fd);
    return rc;
}

static int create_key(const struct kms_local *kl, int version)
{
    char path[PATH_MAX + 32];
    int rc = key_path(kl, version, path, sizeof path);
    if (rc)
        return rc;
    /* Rotations are serialised by the store's write lock; this catches anything else. */
    if (fs_exists(path))
        return cad_fail(CAD_EEXIST, "%s already exists; refusing to overwrite a master key", path);
    cad_secret *key;
    if ((rc = secret_new(&key, MASTER_KEY_LEN)))
        return rc;
    rc = random_bytes(secret_data_mut(key), MASTER_KEY_LEN);
    if (rc == CAD_OK)
        rc = fs_write_atomic(path, secret_data(key), MASTER_KEY_LEN, 0600);
    secret_free(key);
    if (rc == CAD_OK)
        cad_log(LOG_INFO, "kms.local.create", "version=%d path=%s", version, path);
    return rc;
}

static void local_close(void *self)
{
    free(self);
}

static int local_open(void **self, const char *data_dir, int create)
{
    *self = NULL;
    if (!data_dir || !*data_dir)
        return cad_fail(CAD_EINVAL, "no data directory given for the local master key");
    struct kms_local *kl = calloc(1, sizeof *kl);
    if (!kl)
        return cad_fail(CAD_ENOMEM, "out of memory");
    int rc = CAD_OK;
    if (snprintf(kl->dir, sizeof kl->dir, "%s/kms", data_dir) >= (int)sizeof kl->dir)
        rc = cad_fail(CAD_EINVAL, "the data directory path %s is too long", data_dir);
    struct stat sb;
    if (rc == CAD_OK && stat(kl->dir, &sb) != 0) {
        if (errno != ENOENT)
            rc = cad_fail(CAD_EIO, "cannot use %s: %s", kl->dir, strerror(errno));
        else if (!create)
            rc = cad_fail(CAD_ENOTFOUND,
                          "no master key: %s does not exist; run `cadence init` to create one, "
                          "or point CADENCE_DATA at the data directory that holds it",
                          kl->dir);
        else if ((rc = fs_mkdir_p(kl->dir, 0700)) == CAD_OK && chmod(kl->dir, 0700) != 0)
            rc = cad_fail(CAD_EIO, "cannot set the mode of %s: %s", kl->dir, strerror(errno));
    }
    int max = 0;
    if (rc == CAD_OK)
        rc = scan(kl, &max, NULL, NULL);
    if (rc == CAD_OK && max == 0) {
        if (create)
            rc = create_key(kl, 1);
        else
            rc = cad_fail(CAD_ENOTFOUND,
                          "no master key in %s; run `cadence init` to create one, or restore "
                          "the master-<N>.key files from a backup",
                          kl->dir);
    }
    if (rc) {
        free(kl);
        return rc;
    }
    *self = kl;
    return CAD_OK;
}

static int local_current_version(void *self, int *out)
{
    *out = 0;
    int max;
    int rc = scan(self, &max, NULL, NULL);
    if (rc)
        return rc;
    if (max == 0)
        return cad_fail(CAD_ENOTFOUND, "no master key in %s; restore it from a backup",
                        ((struct kms_local *)self)->dir);
    *out = max;
    return CAD_OK;
}

static int build_aad(char *buf, size_t size, int version, const char *context)
{
    if (!context ||
        snprintf(buf, size, "cadence-kms-local/v1|%d|%s", version, context) >= (int)size)
        return cad_fail(CAD_EINVAL, "the wrapping context is missing or too long");
    return CAD_OK;
}

static int local_wrap(void *self, int version, const char *context, const cad_secret *dek,
                      char **out)
{
    *out = NULL;
    char aad[512];
    int rc = build_aad(aad, sizeof aad, version, context);
    if (rc)
        return rc;
    cad_secret *key;
    if ((rc = load_key(self, version, &key)))
        return rc;
    rc = vault_aead_seal(key, aad, secret_data(dek), secret_len(dek), out);
    secret_free(key);
    return rc;
}

static int local_unwrap(void *self, int version, const char *context, const char *wrapped,
                        cad_secret **out)
{
    *out = NULL;
    char aad[512];
    int rc = build_aad(aad, sizeof aad, version, context);
    if (rc)
        return rc;
    cad_secret *key;
    if ((rc = load_key(self, version, &key)))
        return rc;
    rc = vault_aead_open(key, aad, wrapped, out);
    secret_free(key);
    if (rc == CAD_ECRYPTO)
        return cad_fail(CAD_ECRYPTO,
                        "the key wrapped for \"%s\" does not unwrap under master key version %d "
                        "in %s: it was altered, copied from elsewhere, or the key file was "
                        "replaced",
                        context, version, ((struct kms_local *)self)->dir);
    return rc;
}

static int local_add_version(void *self, int *out_version)
{
    *out_version = 0;
    int max;
    int rc = scan(self, &max, NULL, NULL);
    if (rc)
        return rc;
    if (max >= 999999999)
        return cad_fail(CAD_ESTATE, "master key versions are exhausted in %s",
                        ((struct kms_local *)self)->dir);
    if ((rc = create_key(self, max + 1)))
        return rc;
    *out_version = max + 1;
    return CAD_OK;
}

/* Overwrites the key bytes before unlinking, so the file system is less likely to keep them. */
static int destroy_key(const struct kms_local *kl, int version)
{
    char path[PATH_MAX + 32];
    int rc = key_path(kl, version, path, sizeof path);
    if (rc)
        return rc;
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        static const unsigned char zeros[MASTER_KEY_LEN];
        ssize_t w = write(fd, zeros, sizeof zeros);
        int synced = fsync(fd);
        close(fd);
        if (w != (ssize_t)sizeof zeros || synced != 0)
            return cad_fail(CAD_EIO, "cannot overwrite %s before removing it", path);
    }
    if (unlink(path) != 0 && errno != ENOENT)
        return cad_fail(CAD_EIO, "cannot remove %s: %s", path, strerror(errno));
    cad_log(LOG_INFO, "kms.local.retire", "version=%d path=%s", version, path);
    return CAD_OK;
}

static int local_retire_below(void *self, int version)
{
    struct kms_local *kl = self;
    int max, *versions;
    size_t n;
    int rc = scan(kl, &max, &versions, &n);
    if (rc)
        return rc;
    if (version > max) {
        free(versions);
        return cad_fail(CAD_EINVAL,
                        "refusing to retire master key versions below %d: the newest in %s is %d, "
                        "so no key would be left",
                        version, kl->dir, max);
    }
    for (size_t i = 0; i < n && rc == CAD_OK; i++)
        if (versions[i] < version)
            rc = destroy_key(kl, versions[i]);
    free(versions);
    if (rc)
        return rc;
    int fd = open(kl->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cad_fail(CAD_EIO, "cannot open %s: %s", kl->dir, strerror(errno));
    rc = fsync(fd) == 0 ? CAD_OK : cad_fail(CAD_EIO, "cannot sync %s", kl->dir);
    close(fd);
    return rc;
}

const struct kms_ops kms_local_ops = {
    .name = "local",
    .open = local_open,
    .close = local_close,
    .current_version = local_current_version,
    .wrap = local_wrap,
    .unwrap = local_unwrap,
    .add_version = local_add_version,
    .retire_below = local_retire_below,
};
