# s3link — targets a newcomer can guess: make, make demo, make test, make bench, make install.
PREFIX     ?= /usr/local
NODE_MODULES = node_modules/.package-lock.json
NATIVE     = native/build/s3link_fuse.node
APT_PKGS   = fuse libfuse2 libfuse-dev pkg-config gcc make rsync attr sqlite3 git python3 systemd curl chromium awscli

.PHONY: all deps build native test bench demo install clean

all: build

# Debian packages the daemon and the tests need; installs only what is missing.
deps:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-fund --no-audit
	@touch $@

native: $(NATIVE)

$(NATIVE): native/fuse/s3link_fuse.c
	@mkdir -p native/build
	cc -O2 -g -Wall -Wextra -Wno-unused-parameter -shared -fPIC \
	  -I/usr/include/node $$(pkg-config --cflags fuse) \
	  -o $@ $< $$(pkg-config --libs fuse)

build: deps $(NODE_MODULES) $(NATIVE)
	npx tsc -p tsconfig.json
	@# The dashboard's static files, for installed copies (which have dist/ but no src/).
	rm -rf dist/api/dashboard && mkdir -p dist/api && cp -R src/api/dashboard dist/api/dashboard

test: build
	@# Tests drive S3 with the SDK in their own process too: its Node-version notice is noise there.
	AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true npx tap

bench: build
	node dist/bench/main.js

demo: build
	./bin/s3link demo

# Install layout (DESTDIR is prepended to every path written, for staged/package builds; paths that
# end up inside installed files — symlink targets, ExecStart — are the final ones, without DESTDIR):
#   $(PREFIX)/lib/s3link/{bin,dist,native/build,node_modules,package.json}  the application
#   $(PREFIX)/bin/s3link -> ../lib/s3link/bin/s3link  relative, so it also resolves inside DESTDIR
#   $(UNITDIR)/s3link@.service, $(SBINDIR)/mount.s3link (found by mount(8) only in /sbin), /etc/s3link
# bin/s3link loads ../dist/cli/main.js through require(), which node resolves from the script's real
# path, so calling it through the symlink loads the installed dist/.
APPDIR  = $(PREFIX)/lib/s3link
UNITDIR ?= /etc/systemd/system
SBINDIR ?= /sbin

install: build
	install -d -m 0755 $(DESTDIR)$(APPDIR) $(DESTDIR)$(APPDIR)/bin $(DESTDIR)$(APPDIR)/native \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)/etc/s3link
	@# Replace, never merge: a file deleted in this release must not survive from the last one.
	rm -rf $(DESTDIR)$(APPDIR)/dist $(DESTDIR)$(APPDIR)/node_modules $(DESTDIR)$(APPDIR)/native/build
	cp -R dist node_modules package.json $(DESTDIR)$(APPDIR)/
	if [ -f package-lock.json ]; then cp package-lock.json $(DESTDIR)$(APPDIR)/; fi
	cp -R native/build $(DESTDIR)$(APPDIR)/native/
	@# Drop devDependencies (tap, typescript: most of node_modules). Offline and without scripts, so it
	@# can neither fetch nor rebuild anything; if npm cannot prune, the full tree still works.
	cd $(DESTDIR)$(APPDIR) && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund --loglevel=error \
	  || echo "warning: npm prune failed; devDependencies left in $(DESTDIR)$(APPDIR)/node_modules" >&2
	@# Readable by all whatever the umask: non-root users run the CLI too.
	chmod -R u+rwX,go+rX,go-w $(DESTDIR)$(APPDIR)
	install -m 0755 bin/s3link $(DESTDIR)$(APPDIR)/bin/s3link
	ln -sfn ../lib/s3link/bin/s3link $(DESTDIR)$(PREFIX)/bin/s3link
	@# The unit and the helper name /usr/local/bin; point them at this PREFIX's bin/.
	sed 's|/usr/local/bin/s3link|$(PREFIX)/bin/s3link|g' systemd/s3link@.service > $(DESTDIR)$(UNITDIR)/s3link@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/s3link@.service
	sed 's|^bindir=/usr/local/bin$$|bindir=$(PREFIX)/bin|' systemd/mount.s3link > $(DESTDIR)$(SBINDIR)/mount.s3link
	chmod 0755 $(DESTDIR)$(SBINDIR)/mount.s3link
	@# Only a live install on a systemd host must reload units; a staged one has no systemd to tell.
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# Removes what install wrote; keeps /etc/s3link (configuration) and /var/lib/s3link (file system
# state, including data not yet exported to S3). Stop the s3link@ units and unmount first.
.PHONY: uninstall
uninstall:
	rm -rf $(DESTDIR)$(APPDIR)
	rm -f $(DESTDIR)$(PREFIX)/bin/s3link $(DESTDIR)$(UNITDIR)/s3link@.service $(DESTDIR)$(SBINDIR)/mount.s3link
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "kept /etc/s3link and /var/lib/s3link (configuration and file system state)"

clean:
	rm -rf dist native/build .tap
