/* Libraries loaded when first needed (common.h). */
#include <dlfcn.h>
#include <stdio.h>

#include "common/common.h"

static int resolve(struct al_dl_library *lib)
{
	void *handle = dlopen(lib->name, RTLD_NOW | RTLD_LOCAL);

	if (handle == NULL) {
		snprintf(lib->failure, sizeof(lib->failure), "%s", dlerror());
		return -1;
	}
	/* never closed: the pointers live as long as the process */
	for (size_t i = 0; i < lib->n; i++) {
		*lib->symbols[i].ptr = dlsym(handle, lib->symbols[i].name);
		if (*lib->symbols[i].ptr == NULL) {
			snprintf(lib->failure, sizeof(lib->failure),
				 "%s has no %s", lib->name,
				 lib->symbols[i].name);
			return -1;
		}
	}
	return 0;
}

int al_dl_ensure(struct al_dl_library *lib)
{
	/* tried once: a library missing now is missing for this process */
	if (pthread_mutex_lock(&lib->lock) != 0) {
		snprintf(lib->failure, sizeof(lib->failure), "cannot lock");
		return -1;
	}
	if (lib->state == 0)
		lib->state = resolve(lib) == 0 ? 1 : -1;
	int state = lib->state;
	(void)pthread_mutex_unlock(&lib->lock);
	return state > 0 ? 0 : -1;
}
