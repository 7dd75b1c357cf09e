// IdmBridge: what DPF needs to know to wrap the plug-in as VST3, CLAP and LV2.
#pragma once

#define DISTRHO_PLUGIN_BRAND "idm-host"
#define DISTRHO_PLUGIN_NAME  "IdmBridge"
#define DISTRHO_PLUGIN_URI   "urn:idm-host:IdmBridge"
#define DISTRHO_PLUGIN_CLAP_ID "org.idm-host.idmbridge"

#define DISTRHO_PLUGIN_HAS_UI          0
#define DISTRHO_PLUGIN_IS_RT_SAFE      1
#define DISTRHO_PLUGIN_IS_SYNTH        0
#define DISTRHO_PLUGIN_NUM_INPUTS      2
#define DISTRHO_PLUGIN_NUM_OUTPUTS     2
#define DISTRHO_PLUGIN_WANT_MIDI_INPUT  0
#define DISTRHO_PLUGIN_WANT_MIDI_OUTPUT 1
#define DISTRHO_PLUGIN_WANT_TIMEPOS    1
#define DISTRHO_PLUGIN_WANT_STATE      1
#define DISTRHO_PLUGIN_WANT_FULL_STATE 1
#define DISTRHO_PLUGIN_WANT_PROGRAMS   0
#define DISTRHO_PLUGIN_WANT_LATENCY    0

#define DISTRHO_PLUGIN_LV2_CATEGORY    "lv2:AnalyserPlugin"
#define DISTRHO_PLUGIN_VST3_CATEGORIES "Fx|Analyzer|Stereo"
#define DISTRHO_PLUGIN_CLAP_FEATURES   "audio-effect", "analyzer", "stereo"
