/* A minimal CLAP host for the IdmBridge tests: loads a .clap, creates its first plug-in,
 * activates it, runs 200 blocks of 512 stereo frames of a known signal and checks that the
 * output equals the input. Prints the plug-in id and "passthrough ok"; exits 1 on any fault.
 * Usage: clap_host path/to/IdmBridge.clap */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "entry.h"
#include "plugin-factory.h"
#include "plugin.h"

static const void *get_extension(const clap_host_t *h, const char *id) { (void)h; (void)id; return NULL; }
static void request_nothing(const clap_host_t *h) { (void)h; }
static uint32_t no_events(const clap_input_events_t *l) { (void)l; return 0; }
static const clap_event_header_t *no_event(const clap_input_events_t *l, uint32_t i) { (void)l; (void)i; return NULL; }
static unsigned midi_out = 0;
static bool push(const clap_output_events_t *l, const clap_event_header_t *e) { (void)l; (void)e; ++midi_out; return true; }

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: clap_host file.clap\n"); return 2; }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    const clap_plugin_entry_t *entry = (const clap_plugin_entry_t *)dlsym(lib, "clap_entry");
    if (!entry || !entry->init(argv[1])) { fprintf(stderr, "no clap_entry or init failed\n"); return 1; }
    const clap_plugin_factory_t *factory = (const clap_plugin_factory_t *)entry->get_factory(CLAP_PLUGIN_FACTORY_ID);
    if (!factory || factory->get_plugin_count(factory) < 1) { fprintf(stderr, "no plug-in in the factory\n"); return 1; }
    const clap_plugin_descriptor_t *desc = factory->get_plugin_descriptor(factory, 0);
    printf("id %s name %s\n", desc->id, desc->name);
    clap_host_t host = {CLAP_VERSION, NULL, "clap_host", "idm-host tests", "", "1", get_extension,
                        request_nothing, request_nothing, request_nothing};
    const clap_plugin_t *plugin = factory->create_plugin(factory, &host, desc->id);
    if (!plugin || !plugin->init(plugin)) { fprintf(stderr, "create/init failed\n"); return 1; }
    if (!plugin->activate(plugin, 48000.0, 1, 512) || !plugin->start_processing(plugin)) {
        fprintf(stderr, "activate failed\n"); return 1;
    }
    static float in[2][512], out[2][512];
    float *inp[2] = {in[0], in[1]}, *outp[2] = {out[0], out[1]};
    clap_audio_buffer_t ain = {inp, NULL, 2, 0, 0}, aout = {outp, NULL, 2, 0, 0};
    clap_input_events_t ie = {NULL, no_events, no_event};
    clap_output_events_t oe = {NULL, push};
    unsigned seed = 1, bad = 0;
    for (int b = 0; b < 200; ++b) {
        for (int c = 0; c < 2; ++c)
            for (int k = 0; k < 512; ++k) {
                seed = seed * 1103515245u + 12345u;
                in[c][k] = (float)((int)(seed >> 9) - (1 << 21)) / (float)(1 << 23);
                out[c][k] = 1e9f;
            }
        clap_process_t p;
        memset(&p, 0, sizeof p);
        p.steady_time = (int64_t)b * 512;
        p.frames_count = 512;
        p.audio_inputs = &ain;
        p.audio_outputs = &aout;
        p.audio_inputs_count = 1;
        p.audio_outputs_count = 1;
        p.in_events = &ie;
        p.out_events = &oe;
        if (plugin->process(plugin, &p) == CLAP_PROCESS_ERROR) { fprintf(stderr, "process error\n"); return 1; }
        bad += memcmp(in, out, sizeof in) != 0;
    }
    plugin->stop_processing(plugin);
    plugin->deactivate(plugin);
    plugin->destroy(plugin);
    entry->deinit();
    dlclose(lib);
    if (bad) { printf("%u blocks differ\n", bad); return 1; }
    printf("passthrough ok (%u MIDI events)\n", midi_out);
    return 0;
}
