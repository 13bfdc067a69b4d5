/* The modalities, one enum for the data and the network: the network has three slots (audio,
 * text, video: indices 0..2 of its per-modality arrays); a dataset also holds the simulated text
 * (SD_MOD_SIM), which the text-missing flow feeds into the text slot. */
#ifndef SD_CORE_MODALITY_H
#define SD_CORE_MODALITY_H

enum {
    SD_MOD_AUDIO = 0,
    SD_MOD_TEXT = 1,
    SD_MOD_VIDEO = 2,
    SD_MOD_SIM = 3,  /* data only: simulated text */
    SD_MOD_COUNT = 4 /* modalities of a dataset; the network's slots are the first 3 */
};

#endif
