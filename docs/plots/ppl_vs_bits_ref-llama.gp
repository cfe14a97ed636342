set terminal pngcairo size 1000,650 font 'Sans,10'
set output 'docs/plots/ppl_vs_bits_ref-llama.png'
set title 'Perplexity on test against true storage bits per weight (ref-llama)'
set xlabel 'true bits per weight (everything stored for the compressed layers)'
set ylabel 'perplexity, test split, gptq protocol (log scale)'
set logscale y
set grid
set key outside right
set arrow from graph 0, first 109.75722525894152 to graph 1, first 109.75722525894152 nohead dt 2 lc rgb '#555555'
plot 'docs/plots/ppl_vs_bits_ref-llama.dat' index 0 using 1:2 with linespoints pt 7 ps 1.2 title 'RTN', '' index 0 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'docs/plots/ppl_vs_bits_ref-llama.dat' index 1 using 1:2 with linespoints pt 7 ps 1.2 title 'GPTQ', '' index 1 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'docs/plots/ppl_vs_bits_ref-llama.dat' index 2 using 1:2 with linespoints pt 7 ps 1.2 title 'BiLLM', '' index 2 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'docs/plots/ppl_vs_bits_ref-llama.dat' index 3 using 1:2 with linespoints pt 7 ps 1.2 title 'ARB-LLM', '' index 3 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'docs/plots/ppl_vs_bits_ref-llama.dat' index 4 using 1:2 with linespoints pt 7 ps 1.2 title 'STBLLM', '' index 4 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'docs/plots/ppl_vs_bits_ref-llama.dat' index 5 using 1:2 with linespoints pt 7 ps 1.2 title 'PBS2P', '' index 5 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'docs/plots/ppl_vs_bits_ref-llama.dat' index 6 using 1:2 with linespoints pt 7 ps 1.2 title 'SparseGPT', '' index 6 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'docs/plots/ppl_vs_bits_ref-llama.dat' index 7 using 1:2 with linespoints pt 7 ps 1.2 title 'Wanda', '' index 7 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle
