set terminal pngcairo size 1000,650 font 'Sans,10'
set output 'results/plots/ppl_vs_bits_ref-opt.png'
set title 'Perplexity on test against true storage bits per weight (ref-opt)'
set xlabel 'true bits per weight (everything stored for the compressed layers)'
set ylabel 'perplexity, test split, gptq protocol (log scale)'
set logscale y
set grid
set key outside right
set arrow from graph 0, first 150.54739113301994 to graph 1, first 150.54739113301994 nohead dt 2 lc rgb '#555555'
plot 'results/plots/ppl_vs_bits_ref-opt.dat' index 0 using 1:2 with linespoints pt 7 ps 1.2 title 'RTN', '' index 0 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'results/plots/ppl_vs_bits_ref-opt.dat' index 1 using 1:2 with linespoints pt 7 ps 1.2 title 'GPTQ', '' index 1 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'results/plots/ppl_vs_bits_ref-opt.dat' index 2 using 1:2 with linespoints pt 7 ps 1.2 title 'BiLLM', '' index 2 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'results/plots/ppl_vs_bits_ref-opt.dat' index 3 using 1:2 with linespoints pt 7 ps 1.2 title 'ARB-LLM', '' index 3 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'results/plots/ppl_vs_bits_ref-opt.dat' index 4 using 1:2 with linespoints pt 7 ps 1.2 title 'STBLLM', '' index 4 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'results/plots/ppl_vs_bits_ref-opt.dat' index 5 using 1:2 with linespoints pt 7 ps 1.2 title 'PBS2P', '' index 5 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'results/plots/ppl_vs_bits_ref-opt.dat' index 6 using 1:2 with linespoints pt 7 ps 1.2 title 'SparseGPT', '' index 6 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle, 'results/plots/ppl_vs_bits_ref-opt.dat' index 7 using 1:2 with linespoints pt 7 ps 1.2 title 'Wanda', '' index 7 using 1:2:3 with labels offset 0,0.8 font 'Sans,7' notitle
